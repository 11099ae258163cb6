// HaloNet halo attention benchmarks: halo.fwd (ops.haloAttention) and halo.fwdbwd (+ its backward,
// all five gradients) at the halonet50ts stage-3 shape: 16×16 map, 8 heads × 32, block 8, halo 3,
// stride 1; batch 8 on cpu, 64 on cuda.
//
// FLOPs: the USEFUL multiply-adds (2 FLOPs each; exp and the softmax bookkeeping not counted). Keys in
// the zero padding have k = v = 0: they enter the softmax through their relative logit only, so their
// q·k and P·v products are structural zeros and are not counted (the cpu kernel skips them; the dense
// unfold formulation computes them). With keysIn = the in-image keys of a query's window:
//   forward  Σ_queries 2·keysIn·(dk + dv)          (q·k and P·v)
//          + 4·win·dk per query                    (the per-axis relative products q·relH, q·relW)
//   backward Σ_queries 2·keysIn·(3·dk + 2·dv)      (q·k recomputed, dO·v, dS·k, dSᵀ·q, Pᵀ·dO)
//          + 12·win·dk per query                   (relative products recomputed, their dq and table gradients)
// Compared with the same-run FMA peak. PyTorch: timm's unfold formulation (bench/torch_baseline.py).
// Validation: a float64 reference of every output (out, lse, dQ, dK, dV, dRelH, dRelW) computed in
// full, compared on sampled entries within 2e-4 of each tensor's largest magnitude (+1e-6).
import * as va from '../lib';
import { BenchDef, BenchInstance } from './harness';
import { CheckReport, compareToMax, merge } from './reference';

export interface HaloShape {
  B: number; H: number; W: number; M: number; dk: number; dv: number; b: number; h: number; s: number;
}
/** halonet50ts stage 3 (256² input: 16×16 map, 8 heads of 32, b 8, h 3), batch 8 (cpu). */
export const HALO_S3: HaloShape = { B: 8, H: 16, W: 16, M: 8, dk: 32, dv: 32, b: 8, h: 3, s: 1 };
/** The same layer at batch 64 (cuda). */
export const HALO_S3_GPU: HaloShape = { ...HALO_S3, B: 64 };

function geometry(o: HaloShape) {
  const bq = o.b / o.s;
  const win = o.b + 2 * o.h;
  const nbH = o.H / o.b;
  const nbW = o.W / o.b;
  const rows = o.B * nbH * nbW * bq * bq * o.M;
  return { bq, win, nbH, nbW, rows, Hq: o.H / o.s, Wq: o.W / o.s };
}

export function haloFlops(o: HaloShape, backward: boolean): number {
  const { bq, win, nbH, nbW } = geometry(o);
  const inside = (start: number, n: number) => Math.max(0, Math.min(start + win, n) - Math.max(start, 0));
  let keysIn = 0; // Σ over blocks of the in-image keys of the block's window
  for (let I = 0; I < nbH; I++)
    for (let J = 0; J < nbW; J++) keysIn += inside(I * o.b - o.h, o.H) * inside(J * o.b - o.h, o.W);
  const perBlockRows = o.B * bq * bq * o.M; // query rows of one block position over images and heads
  const rows = perBlockRows * nbH * nbW;
  const fwd = 2 * perBlockRows * keysIn * (o.dk + o.dv) + 4 * rows * win * o.dk;
  const bwd = 2 * perBlockRows * keysIn * (3 * o.dk + 2 * o.dv) + 12 * rows * win * o.dk;
  return backward ? fwd + bwd : fwd;
}

interface HaloHost {
  q: Float32Array; k: Float32Array; v: Float32Array; relH: Float32Array; relW: Float32Array; dOut: Float32Array;
}

/** Float64 forward (and backward when dOut is given) of the whole problem (spec §3.2, §3.4). */
function haloReference(o: HaloShape, x: HaloHost, scale: number, backward: boolean) {
  const { bq, win, nbH, nbW, Hq, Wq } = geometry(o);
  const { M, dk, dv, H, W, b, h } = o;
  const nQ = o.B * Hq * Wq * M;
  const out = new Float64Array(nQ * dv);
  const lse = new Float64Array(nQ);
  const dQ = new Float64Array(nQ * dk);
  const dK = new Float64Array(x.k.length);
  const dV = new Float64Array(x.v.length);
  const rows = 2 * win - 1;
  const dRelH = new Float64Array(rows * dk);
  const dRelW = new Float64Array(rows * dk);
  const W2 = win * win;
  const pix = new Int32Array(W2);
  const S = new Float64Array(W2);
  const qRH = new Float64Array(win);
  const qRW = new Float64Array(win);
  const Sh = new Float64Array(win);
  const Sw = new Float64Array(win);
  for (let n = 0; n < o.B; n++)
    for (let I = 0; I < nbH; I++)
      for (let J = 0; J < nbW; J++)
        for (let m = 0; m < M; m++) {
          for (let ky = 0; ky < win; ky++)
            for (let kx = 0; kx < win; kx++) {
              const y = I * b - h + ky;
              const xx = J * b - h + kx;
              pix[ky * win + kx] = y >= 0 && y < H && xx >= 0 && xx < W ? ((n * H + y) * W + xx) * M + m : -1;
            }
          for (let qy = 0; qy < bq; qy++)
            for (let qx = 0; qx < bq; qx++) {
              const row = ((n * Hq + I * bq + qy) * Wq + J * bq + qx) * M + m;
              const qo = row * dk;
              for (let t = 0; t < win; t++) {
                let a = 0;
                let c = 0;
                const rH = (t - qy + win - 1) * dk;
                const rW = (t - qx + win - 1) * dk;
                for (let e = 0; e < dk; e++) {
                  a += x.q[qo + e] * x.relH[rH + e];
                  c += x.q[qo + e] * x.relW[rW + e];
                }
                qRH[t] = a;
                qRW[t] = c;
              }
              let mx = -Infinity;
              for (let j = 0; j < W2; j++) {
                let qk = 0;
                if (pix[j] >= 0) for (let e = 0; e < dk; e++) qk += x.q[qo + e] * x.k[pix[j] * dk + e];
                S[j] = scale * qk + qRH[Math.floor(j / win)] + qRW[j % win];
                mx = Math.max(mx, S[j]);
              }
              let sum = 0;
              for (let j = 0; j < W2; j++) sum += Math.exp(S[j] - mx);
              const L = mx + Math.log(sum);
              lse[row] = L;
              for (let j = 0; j < W2; j++) {
                S[j] = Math.exp(S[j] - L); // P
                if (pix[j] < 0) continue;
                for (let e = 0; e < dv; e++) out[row * dv + e] += S[j] * x.v[pix[j] * dv + e];
              }
              if (!backward) continue;
              let D = 0;
              for (let e = 0; e < dv; e++) D += x.dOut[row * dv + e] * out[row * dv + e];
              Sh.fill(0);
              Sw.fill(0);
              for (let j = 0; j < W2; j++) {
                let dP = 0;
                if (pix[j] >= 0) for (let e = 0; e < dv; e++) dP += x.dOut[row * dv + e] * x.v[pix[j] * dv + e];
                const dS = S[j] * (dP - D);
                Sh[Math.floor(j / win)] += dS;
                Sw[j % win] += dS;
                if (pix[j] < 0) continue;
                for (let e = 0; e < dk; e++) {
                  dQ[qo + e] += scale * dS * x.k[pix[j] * dk + e];
                  dK[pix[j] * dk + e] += scale * dS * x.q[qo + e];
                }
                for (let e = 0; e < dv; e++) dV[pix[j] * dv + e] += S[j] * x.dOut[row * dv + e];
              }
              for (let t = 0; t < win; t++) {
                const rH = (t - qy + win - 1) * dk;
                const rW = (t - qx + win - 1) * dk;
                for (let e = 0; e < dk; e++) {
                  dQ[qo + e] += Sh[t] * x.relH[rH + e] + Sw[t] * x.relW[rW + e];
                  dRelH[rH + e] += Sh[t] * x.q[qo + e];
                  dRelW[rW + e] += Sw[t] * x.q[qo + e];
                }
              }
            }
        }
  return { out, lse, dQ, dK, dV, dRelH, dRelW };
}

function checkAll(named: [string, Float32Array, Float64Array][], seed: number): CheckReport {
  return merge(named.map(([what, got, ref], i) => compareToMax(`halo ${what}`, got, ref, seed + i)));
}

export function haloBench(backward: boolean, o: HaloShape): BenchDef {
  const { win, Hq, Wq } = geometry(o);
  const scale = 1 / Math.sqrt(o.dk);
  const opts = { blockSize: o.b, haloSize: o.h, stride: o.s, scale };
  return {
    name: backward ? 'halo.fwdbwd' : 'halo.fwd',
    family: 'halo',
    dims: [o.B, o.H, o.W, o.M, o.dk, o.dv, o.b, o.h, o.s],
    what: backward
      ? 'haloAttention + haloAttentionBackward → out, lse, dQ, dK, dV, dRelH, dRelW'
      : 'haloAttention (HaloNet fused core) → out, lse',
    shape: `${o.B}x${o.H}x${o.W} ${o.M}x${o.dk} b${o.b} h${o.h}`,
    flops: haloFlops(o, backward),
    limit: 'fma',
    setup(device: va.Device): BenchInstance {
      const q = va.randn([o.B, Hq, Wq, o.M, o.dk], { seed: 61, device });
      const k = va.randn([o.B, o.H, o.W, o.M, o.dk], { seed: 62, device });
      const v = va.randn([o.B, o.H, o.W, o.M, o.dv], { seed: 63, device });
      const relH = va.randn([2 * win - 1, o.dk], { seed: 64, device, std: scale });
      const relW = va.randn([2 * win - 1, o.dk], { seed: 65, device, std: scale });
      const dOut = va.randn([o.B, Hq, Wq, o.M, o.dv], { seed: 66, device });
      const run = (): va.Tensor[] => {
        const f = va.ops.haloAttention(q, k, v, relH, relW, opts);
        if (!backward) return [f.out, f.lse];
        const g = va.ops.haloAttentionBackward(q, k, v, relH, relW, f.out, f.lse, dOut, opts);
        return [f.out, f.lse, g.dQ, g.dK, g.dV, g.dRelH, g.dRelW];
      };
      const inputs = [q, k, v, relH, relW, dOut];
      return {
        run,
        async validate(): Promise<CheckReport> {
          const outs = run();
          try {
            const [hq, hk, hv, hh, hw, hd] = inputs.map((t) => t.dataSync() as Float32Array);
            const ref = haloReference(o, { q: hq, k: hk, v: hv, relH: hh, relW: hw, dOut: hd }, scale, backward);
            const got = outs.map((t) => t.dataSync() as Float32Array);
            const named: [string, Float32Array, Float64Array][] = [['out', got[0], ref.out], ['lse', got[1], ref.lse]];
            if (backward) {
              named.push(['dQ', got[2], ref.dQ], ['dK', got[3], ref.dK], ['dV', got[4], ref.dV],
                ['dRelH', got[5], ref.dRelH], ['dRelW', got[6], ref.dRelW]);
            }
            return checkAll(named, backward ? 90 : 80);
          } finally {
            for (const t of outs) t.dispose();
          }
        },
        dispose: () => {
          for (const t of inputs) t.dispose();
        },
      };
    },
  };
}
