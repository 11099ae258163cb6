// Float64 reference of ML-Decoder's head (spec §1.2–§1.3), composed from the op oracles with the
// parameters keyed by the official checkpoint's names, dropout masks given explicitly (the module's
// (seed, offset) per dropout and the attention-probability seed). The backward chains the oracles'
// backward functions; test/nn.mldecoder.test.ts checks it against central finite differences.
import { activationBackwardRef, activationRef } from './activation';
import { crossAttentionBackwardRef, crossAttentionRef, dropoutRef, groupFCBackwardRef, groupFCRef } from './group_decoder';
import { linearBackwardRef, linearRef } from './matmul';
import { Arr, zerosArr } from './nd';
import { layerNormBackwardRef, layerNormRef } from './norm';
import { concatRef, sliceRef } from './shape';
import type { Params } from './volo';

export interface Mask {
  seed: number;
  offset: number;
}

export interface HeadConfig {
  heads: number;
  /** dropout probability; 0 = eval mode (shared queries, no masks) */
  p: number;
  /** masks of dropout1, dropout2, dropout (FFN), dropout3 and the attention seed (needed when p > 0) */
  masks?: { drop1: Mask; drop2: Mask; drop: Mask; drop3: Mask; attnSeed: number };
}

const L = 'decoder.layers.0.';
const reshape = (a: Arr, shape: number[]): Arr => ({ data: a.data, shape });
const add = (a: Arr, b: Arr): Arr => ({ data: a.data.map((v, i) => v + b.data[i % b.data.length]), shape: a.shape.slice() });
const drop = (x: Arr, p: number, m?: Mask): Arr => (p > 0 ? dropoutRef(x, p, m!.seed, m!.offset) : x);

function parts(x: Arr, P: Params, c: HeadConfig) {
  const B = x.shape[0];
  const Din = x.shape[x.shape.length - 1];
  const tokens = reshape(x, [B, x.data.length / (B * Din), Din]);
  const T = tokens.shape[1];
  const q0 = P['decoder.query_embed.weight'];
  const [K, D] = q0.shape;
  const M = c.heads;
  const dh = D / M;
  const mk = c.masks;
  const Epre = linearRef(tokens, P['decoder.embed_standart.weight'], P['decoder.embed_standart.bias']);
  const E = activationRef('relu', Epre);
  const Bq = c.p > 0 ? B : 1;
  const tgt = zerosArr([Bq, K, D]);
  for (let i = 0; i < tgt.data.length; i++) tgt.data[i] = q0.data[i % (K * D)];
  const t1 = add(tgt, drop(tgt, c.p, mk?.drop1));
  const t2 = layerNormRef(t1, P[`${L}norm1.weight`], P[`${L}norm1.bias`]);
  const W = P[`${L}multihead_attn.in_proj_weight`];
  const bW = P[`${L}multihead_attn.in_proj_bias`];
  const Wq = sliceRef(W, 0, 0, D);
  const Wkv = sliceRef(W, 0, D, 3 * D);
  const bq = sliceRef(bW, 0, 0, D);
  const bkv = sliceRef(bW, 0, D, 3 * D);
  const q = reshape(linearRef(t2, Wq, bq), [Bq, K, M, dh]);
  const kv = linearRef(E, Wkv, bkv);
  const k = reshape(sliceRef(kv, 2, 0, D), [B, T, M, dh]);
  const v = reshape(sliceRef(kv, 2, D, 2 * D), [B, T, M, dh]);
  const attOpts = { scale: Math.pow(dh, -0.5), dropout: c.p, seed: mk?.attnSeed };
  const att = reshape(crossAttentionRef(q, k, v, attOpts).out, [B, K, D]);
  const a = linearRef(att, P[`${L}multihead_attn.out_proj.weight`], P[`${L}multihead_attn.out_proj.bias`]);
  const t3 = add(drop(a, c.p, mk?.drop2), t2);
  const t4 = layerNormRef(t3, P[`${L}norm2.weight`], P[`${L}norm2.bias`]);
  const f1pre = linearRef(t4, P[`${L}linear1.weight`], P[`${L}linear1.bias`]);
  const f1 = drop(activationRef('relu', f1pre), c.p, mk?.drop);
  const f = linearRef(f1, P[`${L}linear2.weight`], P[`${L}linear2.bias`]);
  const t5 = add(t4, drop(f, c.p, mk?.drop3));
  const h = layerNormRef(t5, P[`${L}norm3.weight`], P[`${L}norm3.bias`]);
  return { tokens, Epre, t1, t2, Wq, Wkv, q, k, v, attOpts, att, t3, t4, f1pre, f1, t5, h, B, T, K, D, Bq };
}

export function mlDecoderHeadRef(x: Arr, P: Params, c: HeadConfig): Arr {
  const { h } = parts(x, P, c);
  return groupFCRef(h, P['decoder.duplicate_pooling'], P['decoder.duplicate_pooling_bias']);
}

/** dx and the gradient of every TRAINABLE parameter (the frozen query table gets none). */
export function mlDecoderHeadBackwardRef(x: Arr, P: Params, dLogits: Arr, c: HeadConfig): { dX: Arr; grads: Params } {
  const s = parts(x, P, c);
  const mk = c.masks;
  const grads: Params = {};
  const g = groupFCBackwardRef(s.h, P['decoder.duplicate_pooling'], dLogits);
  grads['decoder.duplicate_pooling'] = g.dW;
  grads['decoder.duplicate_pooling_bias'] = g.dBias;
  const n3 = layerNormBackwardRef(s.t5, P[`${L}norm3.weight`], g.dX);
  grads[`${L}norm3.weight`] = n3.dGamma;
  grads[`${L}norm3.bias`] = n3.dBeta;
  const dF = drop(n3.dX, c.p, mk?.drop3);
  const l2 = linearBackwardRef(s.f1, P[`${L}linear2.weight`], dF, true);
  grads[`${L}linear2.weight`] = l2.dW;
  grads[`${L}linear2.bias`] = l2.dBias!;
  const dF1 = activationBackwardRef('relu', s.f1pre, drop(l2.dX, c.p, mk?.drop)).dX;
  const l1 = linearBackwardRef(s.t4, P[`${L}linear1.weight`], dF1, true);
  grads[`${L}linear1.weight`] = l1.dW;
  grads[`${L}linear1.bias`] = l1.dBias!;
  const dT4 = add(n3.dX, l1.dX);
  const n2 = layerNormBackwardRef(s.t3, P[`${L}norm2.weight`], dT4);
  grads[`${L}norm2.weight`] = n2.dGamma;
  grads[`${L}norm2.bias`] = n2.dBeta;
  const dA = drop(n2.dX, c.p, mk?.drop2);
  const lo = linearBackwardRef(s.att, P[`${L}multihead_attn.out_proj.weight`], dA, true);
  const ca = crossAttentionBackwardRef(s.q, s.k, s.v, reshape(lo.dX, [s.B, s.K, s.q.shape[2], s.q.shape[3]]), s.attOpts);
  const lq = linearBackwardRef(s.t2, s.Wq, reshape(ca.dQ, [s.Bq, s.K, s.D]), true);
  const dKV = concatRef([reshape(ca.dK, [s.B, s.T, s.D]), reshape(ca.dV, [s.B, s.T, s.D])], 2);
  const Epost = activationRef('relu', s.Epre);
  const lkv = linearBackwardRef(Epost, s.Wkv, dKV, true);
  grads[`${L}multihead_attn.in_proj_weight`] = concatRef([lq.dW, lkv.dW], 0);
  grads[`${L}multihead_attn.in_proj_bias`] = concatRef([lq.dBias!, lkv.dBias!], 0);
  grads[`${L}multihead_attn.out_proj.weight`] = lo.dW;
  grads[`${L}multihead_attn.out_proj.bias`] = lo.dBias!;
  // t2 feeds t3 directly (broadcast over the batch when Bq = 1) and the query projection
  const dT2 = zerosArr(s.t2.shape);
  for (let i = 0; i < n2.dX.data.length; i++) dT2.data[i % dT2.data.length] += n2.dX.data[i];
  for (let i = 0; i < dT2.data.length; i++) dT2.data[i] += lq.dX.data[i];
  const n1 = layerNormBackwardRef(s.t1, P[`${L}norm1.weight`], dT2);
  grads[`${L}norm1.weight`] = n1.dGamma;
  grads[`${L}norm1.bias`] = n1.dBeta;
  const dE = activationBackwardRef('relu', s.Epre, lkv.dX).dX;
  const le = linearBackwardRef(s.tokens, P['decoder.embed_standart.weight'], dE, true);
  grads['decoder.embed_standart.weight'] = le.dW;
  grads['decoder.embed_standart.bias'] = le.dBias!;
  return { dX: reshape(le.dX, x.shape.slice()), grads };
}
