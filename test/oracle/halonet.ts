// Float64 reference of HaloNet's HaloAttention layer (spec §3.1–§3.4, timm's HaloAttn), composed from
// the op oracles with parameters keyed by timm's state-dict names: strided 1×1 q projection (top-left
// pixel of every 2×2 cell) in the strided-query mode, kv projection with per-head interleaved
// [key | value] channels, the halo core, and the 2×2 floor-mode average pool in the avg-pool mode.
// The backward chains the oracles' backward functions; test/nn.halo.test.ts checks it against central
// finite differences in float64.
import { haloAttentionBackwardRef, haloAttentionRef } from './halo';
import { linearBackwardRef, linearRef } from './matmul';
import { Arr, zerosArr } from './nd';
import { avgPool2dBackwardRef, avgPool2dRef } from './pool';
import { concatRef, sliceRef } from './shape';
import type { Params } from './volo';

export interface HaloLayerConfig {
  heads: number;
  dimHeadQk: number;
  dimHeadV: number;
  blockSize: number;
  haloSize: number;
  /** 1 or 2 */
  stride: number;
  /** stride 2 through full-resolution attention + avg pool even with an even block */
  avgDown?: boolean;
  scalePosEmbed?: boolean;
}

function mode(c: HaloLayerConfig) {
  const avgPool = c.stride === 2 && (!!c.avgDown || c.blockSize % 2 !== 0);
  return { avgPool, blockStride: c.stride === 2 && !avgPool ? 2 : 1 };
}

function coreOpts(c: HaloLayerConfig) {
  return {
    blockSize: c.blockSize, haloSize: c.haloSize, stride: mode(c).blockStride,
    scale: Math.pow(c.dimHeadQk, -0.5), scalePosEmbed: !!c.scalePosEmbed,
  };
}

const reshape = (a: Arr, shape: number[]): Arr => ({ data: a.data, shape });

/** x[B,H,W,C] at the even pixels → [B,H/2,W/2,C]; with `back`, the adjoint (scatter onto zeros). */
function subsample(x: Arr, H: number, W: number, back: boolean): Arr {
  const B = x.shape[0];
  const C = x.shape[3];
  const out = zerosArr(back ? [B, H, W, C] : [B, H / 2, W / 2, C]);
  for (let n = 0; n < B; n++)
    for (let y = 0; y < H / 2; y++)
      for (let xx = 0; xx < W / 2; xx++)
        for (let c = 0; c < C; c++) {
          const full = ((n * H + 2 * y) * W + 2 * xx) * C + c;
          const half = ((n * (H / 2) + y) * (W / 2) + xx) * C + c;
          if (back) out.data[full] = x.data[half];
          else out.data[half] = x.data[full];
        }
  return out;
}

function forwardParts(x: Arr, P: Params, c: HaloLayerConfig) {
  const [B, H, W] = x.shape;
  const { blockStride: s } = mode(c);
  const M = c.heads;
  const xq = s === 2 ? subsample(x, H, W, false) : x;
  const q = reshape(linearRef(xq, P['q.weight'], P['q.bias']), [B, H / s, W / s, M, c.dimHeadQk]);
  const kv = reshape(linearRef(x, P['kv.weight'], P['kv.bias']), [B, H, W, M, c.dimHeadQk + c.dimHeadV]);
  const k = sliceRef(kv, 4, 0, c.dimHeadQk);
  const v = sliceRef(kv, 4, c.dimHeadQk, c.dimHeadQk + c.dimHeadV);
  const core = haloAttentionRef(q, k, v, P['pos_embed.height_rel'], P['pos_embed.width_rel'], coreOpts(c));
  const y = reshape(core.out, [B, H / s, W / s, M * c.dimHeadV]);
  return { xq, q, k, v, y };
}

export function haloLayerRef(x: Arr, P: Params, c: HaloLayerConfig): Arr {
  const { y } = forwardParts(x, P, c);
  return mode(c).avgPool ? avgPool2dRef(y, { kernelSize: 2, stride: 2, ceilMode: false }) : y;
}

export function haloLayerBackwardRef(x: Arr, P: Params, dOut: Arr, c: HaloLayerConfig): { dX: Arr; grads: Params } {
  const [B, H, W] = x.shape;
  const { avgPool, blockStride: s } = mode(c);
  const M = c.heads;
  const { xq, q, k, v, y } = forwardParts(x, P, c);
  const dY = avgPool ? avgPool2dBackwardRef(y, dOut, { kernelSize: 2, stride: 2, ceilMode: false }).dX : dOut;
  const g = haloAttentionBackwardRef(q, k, v, P['pos_embed.height_rel'], P['pos_embed.width_rel'],
    reshape(dY, [B, H / s, W / s, M, c.dimHeadV]), coreOpts(c));
  const dKV = reshape(concatRef([g.dK, g.dV], 4), [B, H, W, M * (c.dimHeadQk + c.dimHeadV)]);
  const kvB = linearBackwardRef(x, P['kv.weight'], dKV, !!P['kv.bias']);
  const qB = linearBackwardRef(xq, P['q.weight'], reshape(g.dQ, [B, H / s, W / s, M * c.dimHeadQk]), !!P['q.bias']);
  const dXq = s === 2 ? subsample(qB.dX, H, W, true) : qB.dX;
  const dX: Arr = { data: kvB.dX.data.map((val, i) => val + dXq.data[i]), shape: x.shape.slice() };
  const grads: Params = { 'q.weight': qB.dW };
  if (P['q.bias']) grads['q.bias'] = qB.dBias!;
  grads['kv.weight'] = kvB.dW;
  if (P['kv.bias']) grads['kv.bias'] = kvB.dBias!;
  grads['pos_embed.height_rel'] = g.dRelH;
  grads['pos_embed.width_rel'] = g.dRelW;
  return { dX, grads };
}
