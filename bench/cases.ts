// The benchmarks: every one times the SHIPPED public API (va.ops.*), validated first against float64
// references on sampled entries (bench/reference.ts). Later ops add their own BenchDefs here (or in
// a file of their own, listed in allBenches()).
//
//   gemm.fwd    C  = A·B                           1024³, 2·M·N·K FLOPs
//   gemm.dA     dA = dC·Bᵀ   (matmul transposeB)    the first gradient alone
//   gemm.dB     dB = Aᵀ·dC   (matmul transposeA)    the second gradient alone
//   gemm.bwd    matmulBackward(A, B, dC) → {dA, dB}
//   gemm.total  matmul + matmulBackward: forward plus both gradients, 6·M·N·K FLOPs (the headline)
//   softmax.fwd / softmax.bwd, layerNorm.fwd / layerNorm.bwd: rows × cols, compulsory bytes
//     (inputs read once, outputs written once) against the measured streaming bandwidth.
//   outlook.fwd / outlook.fwdbwd: VOLO outlook attention core (ops.outlookAttention, + its backward
//     ops.outlookAttentionBackward) at the VOLO-D1 stage-1 shape, v [8,28,28,192], 6 heads, k = 3,
//     padding 1, stride 2 (logits [8,14,14,6,9,9]); compulsory bytes: fwd v + logits + out, bwd
//     v + logits + dOut + dV + dLogits (fwdbwd counts both calls). PyTorch: the eager formulation
//     (unfold → softmax → matmul → fold, autograd for the backward).
//   halo.fwd / halo.fwdbwd: HaloNet halo attention core (bench/halo.ts) at the halonet50ts stage-3
//     shape; FLOPs against the FMA peak; PyTorch: timm's unfold formulation, autograd for the backward.
//   mld.*: ML-Decoder's cross-attention and group FC ops and the whole head (bench/mldecoder.ts).
//   kmeans.*: kMaX-DeepLab's k-means cross-attention at the COCO stride-8 shape (bench/kmeans.ts).
import * as va from '../lib';
import { BenchDef, BenchInstance } from './harness';
import { HALO_S3, HALO_S3_GPU, haloBench } from './halo';
import { KMEANS_OS8, kmeansBench } from './kmeans';
import { mlDecoderBenches } from './mldecoder';
import {
  CheckReport, checkGemm, checkLayerNorm, checkLayerNormBackward, checkSoftmax, checkSoftmaxBackward, compare, merge, sampleIndices,
} from './reference';

function host(t: va.Tensor): Float32Array {
  return t.dataSync() as Float32Array;
}

function disposeAll(ts: va.Tensor[]): void {
  for (const t of ts) t.dispose();
}

type GemmKind = 'fwd' | 'dA' | 'dB' | 'bwd' | 'total';

function gemmBench(kind: GemmKind, M: number, N: number, K: number): BenchDef {
  const products = kind === 'bwd' ? 2 : kind === 'total' ? 3 : 1;
  const what = {
    fwd: 'C = A·B (matmul)',
    dA: 'dA = dC·Bᵀ (matmul transposeB)',
    dB: 'dB = Aᵀ·dC (matmul transposeA)',
    bwd: 'matmulBackward → dA, dB',
    total: 'matmul + matmulBackward (fwd + dA + dB)',
  }[kind];
  return {
    name: `gemm.${kind}`,
    family: 'gemm',
    what,
    shape: M === N && N === K ? `${M}³` : `${M}x${N}x${K}`,
    flops: 2 * M * N * K * products,
    limit: 'fma',
    setup(device: va.Device): BenchInstance {
      const a = va.randn([M, K], { seed: 11, device });
      const b = va.randn([K, N], { seed: 12, device });
      const dC = va.randn([M, N], { seed: 13, device });
      const run = (): va.Tensor[] => {
        switch (kind) {
          case 'fwd':
            return [va.ops.matmul(a, b)];
          case 'dA':
            return [va.ops.matmul(dC, b, { transposeB: true })];
          case 'dB':
            return [va.ops.matmul(a, dC, { transposeA: true })];
          case 'bwd': {
            const g = va.ops.matmulBackward(a, b, dC);
            return [g.dA, g.dB];
          }
          case 'total': {
            const c = va.ops.matmul(a, b);
            const g = va.ops.matmulBackward(a, b, dC);
            return [c, g.dA, g.dB];
          }
        }
      };
      return {
        run,
        async validate(): Promise<CheckReport> {
          const outs = run();
          try {
            const [ha, hb, hd] = [host(a), host(b), host(dC)];
            const checkC = (t: va.Tensor) => checkGemm(`${kind}: C = A·B`, host(t), ha, hb, M, N, K, false, false);
            const checkDA = (t: va.Tensor) => checkGemm(`${kind}: dA = dC·Bᵀ`, host(t), hd, hb, M, K, N, false, true);
            const checkDB = (t: va.Tensor) => checkGemm(`${kind}: dB = Aᵀ·dC`, host(t), ha, hd, K, N, M, true, false);
            switch (kind) {
              case 'fwd':
                return checkC(outs[0]);
              case 'dA':
                return checkDA(outs[0]);
              case 'dB':
                return checkDB(outs[0]);
              case 'bwd':
                return merge([checkDA(outs[0]), checkDB(outs[1])]);
              case 'total':
                return merge([checkC(outs[0]), checkDA(outs[1]), checkDB(outs[2])]);
            }
          } finally {
            disposeAll(outs);
          }
        },
        dispose: () => disposeAll([a, b, dC]),
      };
    },
  };
}

function softmaxBench(backward: boolean, rows: number, cols: number): BenchDef {
  const n = rows * cols;
  return {
    name: backward ? 'softmax.bwd' : 'softmax.fwd',
    family: 'softmax',
    what: backward ? 'softmaxBackward(x, dY) → dX' : 'softmax over the last axis',
    shape: `${rows}x${cols}`,
    bytes: 4 * n * (backward ? 3 : 2),
    limit: 'bandwidth',
    setup(device: va.Device): BenchInstance {
      const x = va.randn([rows, cols], { seed: 21, device, std: 2 });
      const dy = va.randn([rows, cols], { seed: 22, device });
      const run = (): va.Tensor[] => (backward ? [va.ops.softmaxBackward(x, dy).dX] : [va.ops.softmax(x)]);
      return {
        run,
        async validate(): Promise<CheckReport> {
          const outs = run();
          try {
            const hx = host(x);
            return backward
              ? checkSoftmaxBackward('softmaxBackward dX', host(outs[0]), hx, host(dy), rows, cols)
              : checkSoftmax('softmax', host(outs[0]), hx, rows, cols);
          } finally {
            disposeAll(outs);
          }
        },
        dispose: () => disposeAll([x, dy]),
      };
    },
  };
}

function layerNormBench(backward: boolean, rows: number, cols: number): BenchDef {
  const n = rows * cols;
  const eps = 1e-5;
  return {
    name: backward ? 'layerNorm.bwd' : 'layerNorm.fwd',
    family: 'layerNorm',
    what: backward ? 'layerNormBackward → dX, dGamma, dBeta' : 'layerNorm over the last axis',
    shape: `${rows}x${cols}`,
    // fwd: x in, y out; bwd: x, dY in, dX out (gamma/beta/dGamma/dBeta: cols floats, counted too)
    bytes: backward ? 4 * (3 * n + 3 * cols) : 4 * (2 * n + 2 * cols),
    limit: 'bandwidth',
    setup(device: va.Device): BenchInstance {
      const x = va.randn([rows, cols], { seed: 31, device, mean: 0.5, std: 2 });
      const gamma = va.randn([cols], { seed: 32, device, mean: 1, std: 0.2 });
      const beta = va.randn([cols], { seed: 33, device, std: 0.2 });
      const dy = va.randn([rows, cols], { seed: 34, device });
      const run = (): va.Tensor[] => {
        if (!backward) return [va.ops.layerNorm(x, gamma, beta, { eps })];
        const g = va.ops.layerNormBackward(x, gamma, beta, dy, { eps });
        return [g.dX, g.dGamma, g.dBeta];
      };
      return {
        run,
        async validate(): Promise<CheckReport> {
          const outs = run();
          try {
            const [hx, hg, hb] = [host(x), host(gamma), host(beta)];
            return backward
              ? checkLayerNormBackward('layerNormBackward', host(outs[0]), host(outs[1]), host(outs[2]), hx, hg, host(dy), rows, cols, eps)
              : checkLayerNorm('layerNorm', host(outs[0]), hx, hg, hb, rows, cols, eps);
          } finally {
            disposeAll(outs);
          }
        },
        dispose: () => disposeAll([x, gamma, beta, dy]),
      };
    },
  };
}

// ------------------------------------------------------------------ VOLO outlook attention
export interface OutlookShape {
  B: number; H: number; W: number; C: number; heads: number; k: number; pad: number; stride: number;
}
/** VOLO-D1 stage 1 (224²: 28×28 tokens, C 192, 6 heads, k 3, stride 2), batch 8 (cpu). */
export const OUTLOOK_D1: OutlookShape = { B: 8, H: 28, W: 28, C: 192, heads: 6, k: 3, pad: 1, stride: 2 };
/** The same layer at batch 64: the GPU configuration (issue: batch 64, L2 flushed between repeats). */
export const OUTLOOK_D1_GPU: OutlookShape = { ...OUTLOOK_D1, B: 64 };

function outlookGrid(o: OutlookShape): { h: number; w: number; K2: number; d: number } {
  return {
    h: Math.floor((o.H + 2 * o.pad - o.k) / o.stride) + 1,
    w: Math.floor((o.W + 2 * o.pad - o.k) / o.stride) + 1,
    K2: o.k * o.k,
    d: o.C / o.heads,
  };
}

/**
 * Float64 reference of the outlook core on sampled entries: sampled elements of out and dV (each a
 * gather over the windows covering its pixel) and sampled whole rows of dLogits. Tolerance as for a
 * GEMM element: 1e-4 · Σ|terms| + 1e-6.
 */
function checkOutlook(
  o: OutlookShape, scale: number, v: Float32Array, logits: Float32Array, dOut: Float32Array | null,
  out: Float32Array | null, dV: Float32Array | null, dLogits: Float32Array | null, samples = 48,
): CheckReport {
  const { h, w, K2, d } = outlookGrid(o);
  const { H, W, C, k, pad, stride: s, heads: M } = o;
  const pix = (b: number, y: number, x: number): number => (y < 0 || y >= H || x < 0 || x >= W ? -1 : ((b * H + y) * W + x) * C);
  const rowA = (b: number, i: number, j: number, m: number, q: number): Float64Array => {
    const off = ((((b * h + i) * w + j) * M + m) * K2 + q) * K2;
    let mx = -Infinity;
    for (let r = 0; r < K2; r++) mx = Math.max(mx, scale * logits[off + r]);
    const a = new Float64Array(K2);
    let sum = 0;
    for (let r = 0; r < K2; r++) sum += a[r] = Math.exp(scale * logits[off + r] - mx);
    for (let r = 0; r < K2; r++) a[r] /= sum;
    return a;
  };
  // the windows (i, j) and in-window positions (a, c) covering pixel (y, x)
  const covering = (y: number, x: number): [number, number, number][] => {
    const res: [number, number, number][] = [];
    for (let i = 0; i < h; i++) {
      const a = y + pad - s * i;
      if (a < 0 || a >= k) continue;
      for (let j = 0; j < w; j++) {
        const c = x + pad - s * j;
        if (c >= 0 && c < k) res.push([i, j, a * k + c]);
      }
    }
    return res;
  };
  const reports: CheckReport[] = [];
  const n = v.length;
  // out[b,y,x,ch] = Σ_(i,j,q) Σ_r A[q,r]·v[src(r), ch];  dV[b,y,x,ch] = Σ_(i,j,r) Σ_q A[q,r]·dOut[dest(q), ch]
  for (const [what, got, grad] of [['out', out, false], ['dV', dV, true]] as const) {
    if (!got) continue;
    const idx = sampleIndices(n, samples, grad ? 7 : 6);
    const ref: number[] = [];
    const tol: number[] = [];
    for (const e of idx) {
      const ch = e % C;
      const px = Math.floor(e / C);
      const x = px % W;
      const y = Math.floor(px / W) % H;
      const b = Math.floor(px / (W * H));
      const m = Math.floor(ch / d);
      let acc = 0;
      let abs = 0;
      for (const [i, j, pos] of covering(y, x)) {
        for (let t = 0; t < K2; t++) {
          // forward: pos is the destination q, t the source r; backward: pos is the source r, t the destination q
          const q = grad ? t : pos;
          const r = grad ? pos : t;
          const other = pix(b, s * i - pad + Math.floor(t / k), s * j - pad + (t % k));
          if (other < 0) continue;
          const a = rowA(b, i, j, m, q)[r];
          const term = a * (grad ? (dOut as Float32Array)[other + ch] : v[other + ch]);
          acc += term;
          abs += Math.abs(term);
        }
      }
      ref.push(acc);
      tol.push(1e-4 * abs + 1e-6);
    }
    reports.push(compare(`outlook ${what}`, got, idx, ref, tol));
  }
  if (dLogits && dOut) {
    const rows = o.B * h * w * M * K2;  // dLogits rows (b, i, j, m, q)
    for (const row of sampleIndices(rows, 16, 8)) {
      const q = row % K2;
      const m = Math.floor(row / K2) % M;
      const j = Math.floor(row / (K2 * M)) % w;
      const i = Math.floor(row / (K2 * M * w)) % h;
      const b = Math.floor(row / (K2 * M * w * h));
      const a = rowA(b, i, j, m, q);
      const dst = pix(b, s * i - pad + Math.floor(q / k), s * j - pad + (q % k));
      const dA = new Float64Array(K2);
      const dAabs = new Float64Array(K2);
      for (let r = 0; r < K2; r++) {
        const src = pix(b, s * i - pad + Math.floor(r / k), s * j - pad + (r % k));
        if (dst < 0 || src < 0) continue;
        for (let e = 0; e < d; e++) {
          const t = dOut[dst + m * d + e] * v[src + m * d + e];
          dA[r] += t;
          dAabs[r] += Math.abs(t);
        }
      }
      let dot = 0;
      let dotAbs = 0;
      for (let r = 0; r < K2; r++) {
        dot += a[r] * dA[r];
        dotAbs += a[r] * dAabs[r];
      }
      const idx: number[] = [];
      const ref: number[] = [];
      const tol: number[] = [];
      for (let r = 0; r < K2; r++) {
        idx.push(row * K2 + r);
        ref.push(scale * a[r] * (dA[r] - dot));
        tol.push(1e-4 * Math.abs(scale) * a[r] * (dAabs[r] + dotAbs) + 1e-6);
      }
      reports.push(compare(`outlook dLogits (row ${row})`, dLogits, idx, ref, tol));
    }
  }
  return merge(reports);
}

function outlookBench(backward: boolean, o: OutlookShape): BenchDef {
  const { h, w, K2, d } = outlookGrid(o);
  const nV = o.B * o.H * o.W * o.C;
  const nL = o.B * h * w * o.heads * K2 * K2;
  const fwdBytes = 4 * (2 * nV + nL);
  const bwdBytes = 4 * (3 * nV + 2 * nL);
  const scale = 1 / Math.sqrt(d);
  const opts = { kernelSize: o.k, padding: o.pad, stride: o.stride, scale };
  return {
    name: backward ? 'outlook.fwdbwd' : 'outlook.fwd',
    family: 'outlook',
    dims: [o.B, o.H, o.W, o.C, o.heads, o.k, o.pad, o.stride],
    what: backward ? 'outlookAttention + outlookAttentionBackward → out, dV, dLogits' : 'outlookAttention (VOLO fused core)',
    shape: `${o.B}x${o.H}x${o.W}x${o.C}`,
    bytes: backward ? fwdBytes + bwdBytes : fwdBytes,
    limit: 'bandwidth',
    setup(device: va.Device): BenchInstance {
      const v = va.randn([o.B, o.H, o.W, o.C], { seed: 51, device });
      const logits = va.randn([o.B, h, w, o.heads, K2, K2], { seed: 52, device, std: 3 });
      const dOut = va.randn([o.B, o.H, o.W, o.C], { seed: 53, device });
      const run = (): va.Tensor[] => {
        const out = va.ops.outlookAttention(v, logits, opts);
        if (!backward) return [out];
        const g = va.ops.outlookAttentionBackward(v, logits, dOut, opts);
        return [out, g.dV, g.dLogits];
      };
      return {
        run,
        async validate(): Promise<CheckReport> {
          const outs = run();
          try {
            const [hv, hl, hd] = [host(v), host(logits), host(dOut)];
            return backward
              ? checkOutlook(o, scale, hv, hl, hd, host(outs[0]), host(outs[1]), host(outs[2]))
              : checkOutlook(o, scale, hv, hl, null, host(outs[0]), null, null);
          } finally {
            disposeAll(outs);
          }
        },
        dispose: () => disposeAll([v, logits, dOut]),
      };
    },
  };
}

/** Shapes of the core benchmarks (kept by --quick: only the repetition count shrinks). */
export const GEMM_SIZE = 1024;
export const ROWS = 8192;
export const COLS = 1024;

export function allBenches(device: va.Device = 'cpu'): BenchDef[] {
  const s = GEMM_SIZE;
  return [
    gemmBench('fwd', s, s, s),
    gemmBench('dA', s, s, s),
    gemmBench('dB', s, s, s),
    gemmBench('bwd', s, s, s),
    gemmBench('total', s, s, s),
    softmaxBench(false, ROWS, COLS),
    softmaxBench(true, ROWS, COLS),
    layerNormBench(false, ROWS, COLS),
    layerNormBench(true, ROWS, COLS),
    outlookBench(false, device === 'cuda' ? OUTLOOK_D1_GPU : OUTLOOK_D1),
    outlookBench(true, device === 'cuda' ? OUTLOOK_D1_GPU : OUTLOOK_D1),
    haloBench(false, device === 'cuda' ? HALO_S3_GPU : HALO_S3),
    haloBench(true, device === 'cuda' ? HALO_S3_GPU : HALO_S3),
    ...mlDecoderBenches(device),
    kmeansBench(false, KMEANS_OS8),
    kmeansBench(true, KMEANS_OS8),
  ];
}

/** Dimensions of a benchmark for the PyTorch baseline (bench/torch_baseline.py times the same math). */
export function torchSpec(def: BenchDef): { name: string; dims: number[] } {
  if (def.family === 'gemm') return { name: def.name, dims: [GEMM_SIZE, GEMM_SIZE, GEMM_SIZE] };
  if (def.dims) return { name: def.name, dims: def.dims };
  return { name: def.name, dims: [ROWS, COLS] };
}

/**
 * A streaming-bandwidth probe for devices without a native probe (cuda): c = a + b through the public
 * API over three 256 MB tensors (3 × 256 MB counted per call). Validated on sampled entries.
 */
export function deviceTriadBench(bytesPerArray: number): BenchDef {
  const n = Math.floor(bytesPerArray / 4);
  return {
    name: 'probe.add',
    family: 'probe',
    what: 'c = a + b (ops.add) streaming probe',
    shape: `${n}`,
    bytes: 3 * 4 * n,
    limit: 'bandwidth',
    setup(device: va.Device): BenchInstance {
      const a = va.rand([n], { seed: 41, device });
      const b = va.rand([n], { seed: 42, device });
      const run = (): va.Tensor[] => [va.ops.add(a, b)];
      return {
        run,
        async validate(): Promise<CheckReport> {
          const outs = run();
          try {
            const [hc, ha, hb] = [host(outs[0]), host(a), host(b)];
            let worst = 0;
            const step = Math.max(1, Math.floor(n / 4096));
            let checked = 0;
            for (let i = 0; i < n; i += step) {
              const err = Math.abs(hc[i] - (ha[i] + hb[i]));
              if (!(err <= 1e-6)) throw new Error(`probe.add: element ${i} is ${hc[i]}, expected ${ha[i] + hb[i]}`);
              worst = Math.max(worst, err / 1e-6);
              checked += 1;
            }
            return { checked, worst, maxAbsErr: worst * 1e-6 };
          } finally {
            disposeAll(outs);
          }
        },
        dispose: () => disposeAll([a, b]),
      };
    },
  };
}
