// ML-Decoder benchmarks (issue 5): the fused ops alone and the whole head.
//
//   mld.xattn.fwd / .fwdbwd  ops.crossAttention (+ crossAttentionBackward) at the COCO head's core:
//       80 queries shared by the batch (Bq = 1), 196 tokens, 8 heads × 96; B = 8 (cpu), 64 (cuda).
//       FLOPs 2·B·M·Lq·Lk·(d + dv) forward, + 2·B·M·Lq·Lk·(3d + 2dv) backward. PyTorch: its
//       scaled-dot-product attention (+ autograd).
//   mld.xattn.b1             the same forward at batch 1 (latency).
//   mld.groupfc.fwd / .fwdbwd ops.groupFC (+ groupFCBackward) at the OpenImages head: B = 8, K = 100,
//       D = 768, g = 97, N = 9605. Bandwidth-bound (w is 30 MB): compulsory bytes against the triad
//       probe. PyTorch: the batched einsum.
//   mld.head.coco.fwdbwd / mld.head.oi.fwdbwd  nn.MLDecoderHead in training mode (dropout 0.1):
//       forward + backward of the whole head on tokens [8,196,2048]; COCO N = K = 80, OpenImages
//       N = 9605, K = 100. FLOPs: 3 × the forward's (spec §1.5 formulas; the backward of every GEMM is
//       two GEMMs). PyTorch: the reference head (nn.MultiheadAttention, per-group matmul loop).
//   mld.head.coco.b1         the COCO head's eval forward at batch 1 (latency).
// Validation: float64 references on sampled entries (ops), and for the head the eval-mode logits of
// one image recomputed in float64 from the module's own parameters.
import * as va from '../lib';
import { BenchDef, BenchInstance } from './harness';
import { CheckReport, compare, compareToMax, merge, sampleIndices } from './reference';

function host(t: va.Tensor): Float32Array {
  return t.dataSync() as Float32Array;
}

function disposeAll(ts: va.Tensor[]): void {
  for (const t of ts) t.dispose();
}

// ------------------------------------------------------------------ cross-attention
export interface XattnShape { B: number; Lq: number; Lk: number; M: number; d: number }
export const XATTN_COCO: XattnShape = { B: 8, Lq: 80, Lk: 196, M: 8, d: 96 };
export const XATTN_COCO_GPU: XattnShape = { ...XATTN_COCO, B: 64 };

/** Float64 forward/backward of the shared-query (Bq = 1) cross-attention, no dropout. */
function xattnReference(o: XattnShape, q: Float32Array, k: Float32Array, v: Float32Array, dO: Float32Array | null) {
  const { B, Lq, Lk, M, d } = o;
  const scale = 1 / Math.sqrt(d);
  const out = new Float64Array(B * Lq * M * d);
  const lse = new Float64Array(B * M * Lq);
  const dQ = new Float64Array(Lq * M * d);
  const dK = new Float64Array(B * Lk * M * d);
  const dV = new Float64Array(B * Lk * M * d);
  const P = new Float64Array(Lk);
  for (let b = 0; b < B; b++)
    for (let m = 0; m < M; m++)
      for (let i = 0; i < Lq; i++) {
        const qo = (i * M + m) * d;
        let mx = -Infinity;
        for (let j = 0; j < Lk; j++) {
          const ko = ((b * Lk + j) * M + m) * d;
          let s = 0;
          for (let e = 0; e < d; e++) s += q[qo + e] * k[ko + e];
          P[j] = scale * s;
          mx = Math.max(mx, P[j]);
        }
        let sum = 0;
        for (let j = 0; j < Lk; j++) sum += Math.exp(P[j] - mx);
        const L = mx + Math.log(sum);
        lse[(b * M + m) * Lq + i] = L;
        const oo = ((b * Lq + i) * M + m) * d;
        for (let j = 0; j < Lk; j++) {
          P[j] = Math.exp(P[j] - L);
          const vo = ((b * Lk + j) * M + m) * d;
          for (let e = 0; e < d; e++) out[oo + e] += P[j] * v[vo + e];
        }
        if (!dO) continue;
        let D = 0;
        for (let e = 0; e < d; e++) D += dO[oo + e] * out[oo + e];
        for (let j = 0; j < Lk; j++) {
          const vo = ((b * Lk + j) * M + m) * d;
          let dP = 0;
          for (let e = 0; e < d; e++) dP += dO[oo + e] * v[vo + e];
          const dS = P[j] * (dP - D);
          for (let e = 0; e < d; e++) {
            dQ[qo + e] += scale * dS * k[vo + e];
            dK[vo + e] += scale * dS * q[qo + e];
            dV[vo + e] += P[j] * dO[oo + e];
          }
        }
      }
  return { out, lse, dQ, dK, dV };
}

export function xattnBench(kind: 'fwd' | 'fwdbwd' | 'b1', o: XattnShape): BenchDef {
  const backward = kind === 'fwdbwd';
  const pairs = o.B * o.M * o.Lq * o.Lk;
  const flops = 2 * pairs * (2 * o.d) + (backward ? 2 * pairs * (5 * o.d) : 0);
  return {
    name: `mld.xattn.${kind}`,
    family: 'mld',
    dims: [o.B, o.Lq, o.Lk, o.M, o.d],
    what: backward ? 'crossAttention + crossAttentionBackward (shared queries)' : 'crossAttention (shared queries)',
    shape: `${o.B}x${o.Lq}x${o.Lk} ${o.M}x${o.d}`,
    flops,
    limit: 'fma',
    setup(device: va.Device): BenchInstance {
      const q = va.randn([1, o.Lq, o.M, o.d], { seed: 71, device });
      const k = va.randn([o.B, o.Lk, o.M, o.d], { seed: 72, device });
      const v = va.randn([o.B, o.Lk, o.M, o.d], { seed: 73, device });
      const dOut = va.randn([o.B, o.Lq, o.M, o.d], { seed: 74, device });
      const run = (): va.Tensor[] => {
        const f = va.ops.crossAttention(q, k, v);
        if (!backward) return [f.out, f.lse];
        const g = va.ops.crossAttentionBackward(q, k, v, f.out, f.lse, dOut);
        return [f.out, f.lse, g.dQ, g.dK, g.dV];
      };
      return {
        run,
        async validate(): Promise<CheckReport> {
          const outs = run();
          try {
            const ref = xattnReference(o, host(q), host(k), host(v), backward ? host(dOut) : null);
            const refs = [ref.out, ref.lse, ref.dQ, ref.dK, ref.dV];
            const names = ['out', 'lse', 'dQ', 'dK', 'dV'];
            return merge(outs.map((t, i) => compareToMax(`crossAttention ${names[i]}`, host(t), refs[i], 100 + i)));
          } finally {
            disposeAll(outs);
          }
        },
        dispose: () => disposeAll([q, k, v, dOut]),
      };
    },
  };
}

// ------------------------------------------------------------------ group FC
export interface GroupFCShape { B: number; K: number; D: number; g: number; N: number }
export const GFC_OPENIMAGES: GroupFCShape = { B: 8, K: 100, D: 768, g: 97, N: 9605 };

export function groupFCBench(backward: boolean, o: GroupFCShape): BenchDef {
  const { B, K, D, g, N } = o;
  const nx = B * K * D;
  const nw = K * D * g;
  const fwdBytes = 4 * (nx + nw + N + B * N);
  const bwdBytes = 4 * (nx + nw + B * N + nx + nw + N);
  return {
    name: `mld.groupfc.${backward ? 'fwdbwd' : 'fwd'}`,
    family: 'mld',
    dims: [B, K, D, g, N],
    what: backward ? 'groupFC + groupFCBackward → logits, dX, dW, dBias' : 'groupFC (ML-Decoder group fully-connected)',
    shape: `${B}x${K}x${D} g${g} N${N}`,
    bytes: backward ? fwdBytes + bwdBytes : fwdBytes,
    limit: 'bandwidth',
    setup(device: va.Device): BenchInstance {
      const x = va.randn([B, K, D], { seed: 81, device });
      const w = va.randn([K, D, g], { seed: 82, device, std: 0.05 });
      const bias = va.randn([N], { seed: 83, device });
      const dL = va.randn([B, N], { seed: 84, device });
      const run = (): va.Tensor[] => {
        const y = va.ops.groupFC(x, w, bias);
        if (!backward) return [y];
        const r = va.ops.groupFCBackward(x, w, dL);
        return [y, r.dX, r.dW, r.dBias];
      };
      return {
        run,
        async validate(): Promise<CheckReport> {
          const outs = run();
          try {
            const [hx, hw, hb, hd] = [host(x), host(w), host(bias), host(dL)];
            const reports: CheckReport[] = [];
            const got = outs.map(host);
            // logits[b,c] and dBias[c] on sampled entries
            const lIdx = sampleIndices(B * N, 64, 91);
            const lRef: number[] = [];
            const lTol: number[] = [];
            for (const e of lIdx) {
              const b = Math.floor(e / N);
              const c = e % N;
              const kk = Math.floor(c / g);
              const j = c % g;
              let s = hb[c];
              let abs = Math.abs(hb[c]);
              for (let dd = 0; dd < D; dd++) {
                const t = hx[(b * K + kk) * D + dd] * hw[(kk * D + dd) * g + j];
                s += t;
                abs += Math.abs(t);
              }
              lRef.push(s);
              lTol.push(1e-4 * abs + 1e-6);
            }
            reports.push(compare('groupFC logits', got[0], lIdx, lRef, lTol));
            if (backward) {
              const xIdx = sampleIndices(nx, 64, 92);
              reports.push(compare('groupFC dX', got[1], xIdx, xIdx.map((e) => {
                const b = Math.floor(e / (K * D));
                const kk = Math.floor(e / D) % K;
                const dd = e % D;
                let s = 0;
                for (let j = 0; j < g && kk * g + j < N; j++) s += hw[(kk * D + dd) * g + j] * hd[b * N + kk * g + j];
                return s;
              }), xIdx.map(() => 1e-3)));
              const wIdx = [...sampleIndices(nw, 64, 93), nw - 1];
              reports.push(compare('groupFC dW', got[2], wIdx, wIdx.map((e) => {
                const kk = Math.floor(e / (D * g));
                const dd = Math.floor(e / g) % D;
                const j = e % g;
                if (kk * g + j >= N) return 0;
                let s = 0;
                for (let b = 0; b < B; b++) s += hx[(b * K + kk) * D + dd] * hd[b * N + kk * g + j];
                return s;
              }), wIdx.map(() => 1e-4)));
              const bIdx = sampleIndices(N, 32, 94);
              reports.push(compare('groupFC dBias', got[3], bIdx, bIdx.map((c) => {
                let s = 0;
                for (let b = 0; b < B; b++) s += hd[b * N + c];
                return s;
              }), bIdx.map(() => 1e-5)));
            }
            return merge(reports);
          } finally {
            disposeAll(outs);
          }
        },
        dispose: () => disposeAll([x, w, bias, dL]),
      };
    },
  };
}

// ------------------------------------------------------------------ the whole head
export interface HeadShape { B: number; T: number; inDim: number; N: number; K: number; D: number; M: number; F: number }
export const HEAD_COCO: HeadShape = { B: 8, T: 196, inDim: 2048, N: 80, K: 80, D: 768, M: 8, F: 2048 };
export const HEAD_OI: HeadShape = { ...HEAD_COCO, N: 9605, K: 100 };

/** Forward FLOPs of one head call (spec §1.5: embed, K/V, Q, attention, out, FFN, group FC). */
export function headForwardFlops(o: HeadShape, perImageQueries: boolean): number {
  const { B, T, inDim, N, K, D, F } = o;
  const g = Math.ceil(N / K);
  const q = 2 * K * D * D * (perImageQueries ? B : 1);
  return B * (2 * T * inDim * D + 4 * T * D * D + 4 * K * T * D + 2 * K * D * D + 4 * K * D * F + 2 * K * D * g) + q;
}

/** Float64 eval-mode logits of image `b` from the module's parameters (every op in the reference order). */
function headReference(o: HeadShape, P: Record<string, Float32Array>, x: Float32Array, b: number): Float64Array {
  const { T, inDim, N, K, D, M, F } = o;
  const g = Math.ceil(N / K);
  const pre = 'decoder.layers.0.';
  const lin = (inp: Float64Array, rows: number, inF: number, w: Float32Array, bias: Float32Array, outF: number, relu = false) => {
    const y = new Float64Array(rows * outF);
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < outF; c++) {
        let s = bias[c];
        for (let i = 0; i < inF; i++) s += inp[r * inF + i] * w[c * inF + i];
        y[r * outF + c] = relu ? Math.max(s, 0) : s;
      }
    return y;
  };
  const ln = (inp: Float64Array, rows: number, name: string) => {
    const y = new Float64Array(rows * D);
    for (let r = 0; r < rows; r++) {
      let mean = 0;
      for (let i = 0; i < D; i++) mean += inp[r * D + i];
      mean /= D;
      let vr = 0;
      for (let i = 0; i < D; i++) vr += (inp[r * D + i] - mean) ** 2;
      const rstd = 1 / Math.sqrt(vr / D + 1e-5);
      for (let i = 0; i < D; i++) y[r * D + i] = (inp[r * D + i] - mean) * rstd * P[`${pre}${name}.weight`][i] + P[`${pre}${name}.bias`][i];
    }
    return y;
  };
  const add = (a: Float64Array, c: Float64Array) => a.map((v, i) => v + c[i]);
  const tokens = Float64Array.from(x.subarray(b * T * inDim, (b + 1) * T * inDim));
  const E = lin(tokens, T, inDim, P['decoder.embed_standart.weight'], P['decoder.embed_standart.bias'], D, true);
  const q0 = Float64Array.from(P['decoder.query_embed.weight']);
  const t2 = ln(q0.map((v) => 2 * v), K, 'norm1');
  const W = P[`${pre}multihead_attn.in_proj_weight`];
  const Bi = P[`${pre}multihead_attn.in_proj_bias`];
  const q = lin(t2, K, D, W.subarray(0, D * D), Bi.subarray(0, D), D);
  const kk = lin(E, T, D, W.subarray(D * D, 2 * D * D), Bi.subarray(D, 2 * D), D);
  const vv = lin(E, T, D, W.subarray(2 * D * D), Bi.subarray(2 * D), D);
  const dh = D / M;
  const att = new Float64Array(K * D);
  const s = new Float64Array(T);
  for (let m = 0; m < M; m++)
    for (let i = 0; i < K; i++) {
      let mx = -Infinity;
      for (let j = 0; j < T; j++) {
        let acc = 0;
        for (let e = 0; e < dh; e++) acc += q[i * D + m * dh + e] * kk[j * D + m * dh + e];
        s[j] = acc / Math.sqrt(dh);
        mx = Math.max(mx, s[j]);
      }
      let sum = 0;
      for (let j = 0; j < T; j++) sum += (s[j] = Math.exp(s[j] - mx));
      for (let j = 0; j < T; j++)
        for (let e = 0; e < dh; e++) att[i * D + m * dh + e] += (s[j] / sum) * vv[j * D + m * dh + e];
    }
  const a = lin(att, K, D, P[`${pre}multihead_attn.out_proj.weight`], P[`${pre}multihead_attn.out_proj.bias`], D);
  const t4 = ln(add(t2, a), K, 'norm2');
  const f1 = lin(t4, K, D, P[`${pre}linear1.weight`], P[`${pre}linear1.bias`], F, true);
  const f = lin(f1, K, F, P[`${pre}linear2.weight`], P[`${pre}linear2.bias`], D);
  const h = ln(add(t4, f), K, 'norm3');
  const logits = new Float64Array(N);
  const wg = P['decoder.duplicate_pooling'];
  for (let c = 0; c < N; c++) {
    const k = Math.floor(c / g);
    let acc = P['decoder.duplicate_pooling_bias'][c];
    for (let dd = 0; dd < D; dd++) acc += h[k * D + dd] * wg[(k * D + dd) * g + (c % g)];
    logits[c] = acc;
  }
  return logits;
}

export function headBench(name: string, o: HeadShape, train: boolean): BenchDef {
  const p = 0.1;
  const fwd = headForwardFlops(o, train);
  return {
    name,
    family: 'mld',
    dims: [o.B, o.T, o.inDim, o.N, o.K, o.D, o.M, o.F, Math.round(p * 1000), train ? 1 : 0],
    what: train ? 'MLDecoderHead forward + backward (training, dropout 0.1)' : 'MLDecoderHead forward (eval)',
    shape: `${o.B}x${o.T}x${o.inDim} N${o.N} K${o.K}`,
    flops: train ? 3 * fwd : fwd,
    limit: 'fma',
    setup(device: va.Device): BenchInstance {
      const head = new va.nn.MLDecoderHead(o.N, {
        inDim: o.inDim, numGroups: o.K, embedDim: o.D, heads: o.M, ffnDim: o.F, dropout: p, device, seed: 5,
      });
      const x = va.randn([o.B, o.T, o.inDim], { seed: 85, device });
      const dL = va.randn([o.B, o.N], { seed: 86, device });
      const run = (): va.Tensor[] => {
        const y = head.forward(x);
        if (!train) return [y];
        const dx = head.backward(dL);
        head.zeroGrad();
        return [y, dx];
      };
      if (train) head.train();
      else head.eval();
      return {
        run,
        async validate(): Promise<CheckReport> {
          head.eval();
          const y = head.forward(x);
          try {
            const sd = head.stateDict();
            const P: Record<string, Float32Array> = {};
            for (const [n, t] of Object.entries(sd)) {
              P[n] = host(t);
              t.dispose();
            }
            const hx = host(x);
            const got = host(y);
            const b = o.B - 1;
            const ref = headReference(o, P, hx, b);
            const idx = sampleIndices(o.N, 48, 95);
            let mx = 0;
            for (const v of ref) mx = Math.max(mx, Math.abs(v));
            return compare(`${name} eval logits (image ${b})`, got.subarray(b * o.N, (b + 1) * o.N), idx, idx.map((c) => ref[c]),
              idx.map(() => 1e-3 * mx + 1e-5));
          } finally {
            y.dispose();
            if (train) head.train();
          }
        },
        dispose: () => {
          head.dispose();
          disposeAll([x, dL]);
        },
      };
    },
  };
}

export function mlDecoderBenches(device: va.Device): BenchDef[] {
  const gpu = device === 'cuda';
  return [
    xattnBench('fwd', gpu ? XATTN_COCO_GPU : XATTN_COCO),
    xattnBench('fwdbwd', gpu ? XATTN_COCO_GPU : XATTN_COCO),
    xattnBench('b1', { ...XATTN_COCO, B: 1 }),
    groupFCBench(false, GFC_OPENIMAGES),
    groupFCBench(true, GFC_OPENIMAGES),
    headBench('mld.head.coco.fwdbwd', HEAD_COCO, true),
    headBench('mld.head.oi.fwdbwd', HEAD_OI, true),
    headBench('mld.head.coco.b1', { ...HEAD_COCO, B: 1 }, false),
  ];
}
