// Modules for training without autograd: forward(x) / backward(dy) / parameters(), explicit gradients.
export { Module, Parameter } from './module';
export type { LoadStateDictOptions, LoadStateDictResult } from './module';
export { Linear } from './linear';
export type { LinearOptions } from './linear';
export { LayerNorm } from './layernorm';
export type { LayerNormModuleOptions } from './layernorm';
export { GELU, ReLU } from './activation';
export { Mlp } from './mlp';
export type { MlpOptions } from './mlp';
export { Sequential } from './containers';
export { OutlookAttention, Outlooker } from './outlook';
export type { OutlookAttentionModuleOptions, OutlookerOptions } from './outlook';
export { HaloAttention, HaloPosEmbed } from './halo';
export type { HaloAttentionModuleOptions } from './halo';
export { Dropout } from './dropout';
export type { DropoutOptions } from './dropout';
export { MLDecoderHead, MultiheadCrossAttention, DecoderLayerOptimal } from './mldecoder';
export type { MLDecoderHeadOptions } from './mldecoder';
