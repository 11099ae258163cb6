// Float64 references of VOLO's OutlookAttention layer and Outlooker block (spec §2.2–§2.4), composed
// from the op oracles, with parameters keyed by timm's state-dict names. The backward functions chain
// the oracles' backward functions in reverse order; test/nn.outlook.test.ts checks them against
// central finite differences in float64.
import { activationBackwardRef, activationRef } from './activation';
import { linearBackwardRef, linearRef } from './matmul';
import { Arr } from './nd';
import { layerNormBackwardRef, layerNormRef } from './norm';
import { outlookAttentionBackwardRef, outlookAttentionRef } from './outlook';
import { avgPool2dBackwardRef, avgPool2dRef } from './pool';

export type Params = Record<string, Arr>;

export interface OutlookLayerConfig {
  heads: number;
  kernelSize: number;
  stride: number;
  /** default (C/heads)^−1/2 */
  scale?: number;
}

export interface OutlookerConfig extends OutlookLayerConfig {
  eps: number;
}

function addArr(a: Arr, b: Arr): Arr {
  return { data: a.data.map((v, i) => v + b.data[i]), shape: a.shape.slice() };
}

function coreOpts(x: Arr, c: OutlookLayerConfig) {
  const k = c.kernelSize;
  return { kernelSize: k, padding: (k - 1) / 2, stride: c.stride, scale: c.scale ?? Math.pow(x.shape[3] / c.heads, -0.5) };
}

function poolOpts(c: OutlookLayerConfig) {
  return { kernelSize: c.stride, stride: c.stride, ceilMode: true };
}

function oaForward(x: Arr, P: Params, c: OutlookLayerConfig, pre: string) {
  const [B, H, W] = x.shape;
  const K2 = c.kernelSize * c.kernelSize;
  const v = linearRef(x, P[`${pre}v.weight`], P[`${pre}v.bias`] ?? null);
  const pooled = c.stride > 1 ? avgPool2dRef(x, poolOpts(c)) : x;
  const zf = linearRef(pooled, P[`${pre}attn.weight`], P[`${pre}attn.bias`]);
  // timm: reshape(B, h·w, M, k², k²) — the M·k⁴ outputs ordered (m, q, r)
  const logits: Arr = { data: zf.data, shape: [B, Math.ceil(H / c.stride), Math.ceil(W / c.stride), c.heads, K2, K2] };
  const y = outlookAttentionRef(v, logits, coreOpts(x, c));
  const out = linearRef(y, P[`${pre}proj.weight`], P[`${pre}proj.bias`]);
  return { v, pooled, zf, logits, y, out };
}

export function outlookLayerRef(x: Arr, P: Params, c: OutlookLayerConfig, pre = ''): Arr {
  return oaForward(x, P, c, pre).out;
}

/** {dX, grads} with grads keyed like P. */
export function outlookLayerBackwardRef(x: Arr, P: Params, dOut: Arr, c: OutlookLayerConfig, pre = ''): { dX: Arr; grads: Params } {
  const f = oaForward(x, P, c, pre);
  const grads: Params = {};
  const gp = linearBackwardRef(f.y, P[`${pre}proj.weight`], dOut, true);
  grads[`${pre}proj.weight`] = gp.dW;
  grads[`${pre}proj.bias`] = gp.dBias!;
  const core = outlookAttentionBackwardRef(f.v, f.logits, gp.dX, coreOpts(x, c));
  const hasVBias = `${pre}v.bias` in P;
  const gv = linearBackwardRef(x, P[`${pre}v.weight`], core.dV, hasVBias);
  grads[`${pre}v.weight`] = gv.dW;
  if (hasVBias) grads[`${pre}v.bias`] = gv.dBias!;
  const dZf: Arr = { data: core.dLogits.data, shape: f.zf.shape };
  const ga = linearBackwardRef(f.pooled, P[`${pre}attn.weight`], dZf, true);
  grads[`${pre}attn.weight`] = ga.dW;
  grads[`${pre}attn.bias`] = ga.dBias!;
  const dXa = c.stride > 1 ? avgPool2dBackwardRef(x, ga.dX, poolOpts(c)).dX : ga.dX;
  return { dX: addArr(gv.dX, dXa), grads };
}

function outlookerForward(x: Arr, P: Params, c: OutlookerConfig) {
  const a = layerNormRef(x, P['norm1.weight'], P['norm1.bias'], c.eps);
  const x1 = addArr(x, outlookLayerRef(a, P, c, 'attn.'));
  const n2 = layerNormRef(x1, P['norm2.weight'], P['norm2.bias'], c.eps);
  const h = linearRef(n2, P['mlp.fc1.weight'], P['mlp.fc1.bias']);
  const g = activationRef('gelu', h);
  const m = linearRef(g, P['mlp.fc2.weight'], P['mlp.fc2.bias']);
  return { a, x1, n2, h, g, out: addArr(x1, m) };
}

export function outlookerRef(x: Arr, P: Params, c: OutlookerConfig): Arr {
  return outlookerForward(x, P, c).out;
}

export function outlookerBackwardRef(x: Arr, P: Params, dOut: Arr, c: OutlookerConfig): { dX: Arr; grads: Params } {
  const f = outlookerForward(x, P, c);
  const grads: Params = {};
  const g2 = linearBackwardRef(f.g, P['mlp.fc2.weight'], dOut, true);
  grads['mlp.fc2.weight'] = g2.dW;
  grads['mlp.fc2.bias'] = g2.dBias!;
  const dh = activationBackwardRef('gelu', f.h, g2.dX).dX;
  const g1 = linearBackwardRef(f.n2, P['mlp.fc1.weight'], dh, true);
  grads['mlp.fc1.weight'] = g1.dW;
  grads['mlp.fc1.bias'] = g1.dBias!;
  const ln2 = layerNormBackwardRef(f.x1, P['norm2.weight'], g1.dX, c.eps);
  grads['norm2.weight'] = ln2.dGamma;
  grads['norm2.bias'] = ln2.dBeta;
  const dx1 = addArr(dOut, ln2.dX);
  const oa = outlookLayerBackwardRef(f.a, P, dx1, c, 'attn.');
  Object.assign(grads, oa.grads);
  const ln1 = layerNormBackwardRef(x, P['norm1.weight'], oa.dX, c.eps);
  grads['norm1.weight'] = ln1.dGamma;
  grads['norm1.bias'] = ln1.dBeta;
  return { dX: addArr(dx1, ln1.dX), grads };
}
