// kMaX-DeepLab k-means cross-attention benchmarks at the COCO stride-8 shape (161×161 pixels, L = 128
// centers, D = 128, Dv = 256, batch 1 on cpu and cuda):
//   kmeans.fwd     ops.kmeansCrossAttention without logits (inference)
//   kmeans.fwdbwd  with logits (training: the deep-supervision losses read them) + the backward gather
// Compulsory bytes (inputs read once, outputs written once) against the measured streaming bandwidth:
//   fwd pixels + centers + values + update + assign; fwdbwd adds logits, and assign + dUpdate read
//   and dValues written by the backward. PyTorch: eager logits einsum + argmax + scatter-add, autograd
//   for the backward (already better than the reference's dense one-hot einsum).
// Validation: every pixel's assignment must be a float64 arg-max of its scores (within float32
// rounding of the best score), the update must be the float64 segment sums over that assignment
// (sampled), the backward the gather (sampled).
import * as va from '../lib';
import { BenchDef, BenchInstance } from './harness';
import { CheckReport, compare, merge, sampleIndices } from './reference';

export interface KMeansShape { B: number; N: number; L: number; D: number; Dv: number }
export const KMEANS_OS8: KMeansShape = { B: 1, N: 161 * 161, L: 128, D: 128, Dv: 256 };

function host(t: va.Tensor): Float32Array {
  return t.dataSync() as Float32Array;
}

function checkKMeans(o: KMeansShape, px: Float32Array, ce: Float32Array, va_: Float32Array, assign: Int32Array,
  update: Float32Array, logits: Float32Array | null, dU: Float32Array | null, dV: Float32Array | null): CheckReport {
  const { B, N, L, D, Dv } = o;
  const reports: CheckReport[] = [];
  // every assignment is an arg-max: its float64 score is within float32 rounding of the best
  let worst = 0;
  for (let b = 0; b < B; b++)
    for (let n = 0; n < N; n++) {
      let best = -Infinity;
      let mine = NaN;
      let mag = 0;
      const a = assign[b * N + n];
      if (!(a >= 0 && a < L)) throw new Error(`kmeans: assign[${b},${n}] = ${a} is outside [0, ${L})`);
      for (let l = 0; l < L; l++) {
        let s = 0;
        let m = 0;
        for (let d = 0; d < D; d++) {
          const t = px[(b * N + n) * D + d] * ce[(b * L + l) * D + d];
          s += t;
          m += Math.abs(t);
        }
        best = Math.max(best, s);
        mag = Math.max(mag, m);
        if (l === a) mine = s;
      }
      const tol = 1e-5 * mag + 1e-6;
      if (!(best - mine <= tol)) throw new Error(`kmeans: pixel ${n} of image ${b} was assigned to ${a} with score ${mine}, below the best ${best} by more than ${tol}`);
      worst = Math.max(worst, (best - mine) / tol);
    }
  reports.push({ checked: B * N, worst, maxAbsErr: 0 });
  // update: float64 segment sums over the kernel's own assignment
  const ref = new Float64Array(B * L * Dv);
  const abs = new Float64Array(B * L * Dv);
  for (let b = 0; b < B; b++)
    for (let n = 0; n < N; n++) {
      const l = assign[b * N + n];
      for (let e = 0; e < Dv; e++) {
        ref[(b * L + l) * Dv + e] += va_[(b * N + n) * Dv + e];
        abs[(b * L + l) * Dv + e] += Math.abs(va_[(b * N + n) * Dv + e]);
      }
    }
  const uIdx = sampleIndices(B * L * Dv, 256, 121);
  reports.push(compare('kmeans update', update, uIdx, uIdx.map((i) => ref[i]), uIdx.map((i) => 1e-5 * abs[i] + 1e-6)));
  if (logits) {
    const lIdx = sampleIndices(B * L * N, 128, 122);
    reports.push(compare('kmeans logits', logits, lIdx, lIdx.map((i) => {
      const b = Math.floor(i / (L * N));
      const l = Math.floor(i / N) % L;
      const n = i % N;
      let s = 0;
      for (let d = 0; d < D; d++) s += px[(b * N + n) * D + d] * ce[(b * L + l) * D + d];
      return s;
    }), lIdx.map(() => 1e-3)));
  }
  if (dU && dV) {
    const vIdx = sampleIndices(B * N * Dv, 256, 123);
    reports.push(compare('kmeans dValues', dV, vIdx, vIdx.map((i) => {
      const b = Math.floor(i / (N * Dv));
      const n = Math.floor(i / Dv) % N;
      return dU[(b * L + assign[b * N + n]) * Dv + (i % Dv)];
    }), vIdx.map(() => 0)));
  }
  return merge(reports);
}

export function kmeansBench(backward: boolean, o: KMeansShape): BenchDef {
  const { B, N, L, D, Dv } = o;
  const fwdBytes = 4 * (B * N * D + B * L * D + B * N * Dv + B * L * Dv + B * N);
  const bytes = backward ? fwdBytes + 4 * B * L * N + 4 * (B * N + B * L * Dv + B * N * Dv) : fwdBytes;
  return {
    name: backward ? 'kmeans.fwdbwd' : 'kmeans.fwd',
    family: 'kmeans',
    dims: [B, N, L, D, Dv],
    what: backward
      ? 'kmeansCrossAttention (logits on) + kmeansCrossAttentionBackward'
      : 'kmeansCrossAttention (assign + update, no logits)',
    shape: `${B}x${N} L${L} D${D} Dv${Dv}`,
    bytes,
    limit: 'bandwidth',
    setup(device: va.Device): BenchInstance {
      const pixels = va.randn([B, N, D], { seed: 131, device });
      const centers = va.randn([B, L, D], { seed: 132, device });
      const values = va.randn([B, N, Dv], { seed: 133, device });
      const dUpdate = va.randn([B, L, Dv], { seed: 134, device });
      const run = (): va.Tensor[] => {
        const r = va.ops.kmeansCrossAttention(pixels, centers, values, { returnLogits: backward });
        if (!backward) return [r.update, r.assign];
        const dV = va.ops.kmeansCrossAttentionBackward(r.assign, dUpdate, { numPixels: N });
        return [r.update, r.assign, r.logits!, dV];
      };
      return {
        run,
        async validate(): Promise<CheckReport> {
          const outs = run();
          try {
            return checkKMeans(o, host(pixels), host(centers), host(values), outs[1].dataSync() as Int32Array, host(outs[0]),
              backward ? host(outs[2]) : null, backward ? host(dUpdate) : null, backward ? host(outs[3]) : null);
          } finally {
            for (const t of outs) t.dispose();
          }
        },
        dispose: () => {
          for (const t of [pixels, centers, values, dUpdate]) t.dispose();
        },
      };
    },
  };
}
