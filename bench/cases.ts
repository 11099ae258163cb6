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
import * as va from '../lib';
import { BenchDef, BenchInstance } from './harness';
import { CheckReport, checkGemm, checkLayerNorm, checkLayerNormBackward, checkSoftmax, checkSoftmaxBackward, merge } from './reference';

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

/** Shapes of the core benchmarks (kept by --quick: only the repetition count shrinks). */
export const GEMM_SIZE = 1024;
export const ROWS = 8192;
export const COLS = 1024;

export function allBenches(): BenchDef[] {
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
  ];
}

/** Dimensions of a benchmark for the PyTorch baseline (bench/torch_baseline.py times the same math). */
export function torchSpec(def: BenchDef): { name: string; dims: number[] } {
  if (def.family === 'gemm') return { name: def.name, dims: [GEMM_SIZE, GEMM_SIZE, GEMM_SIZE] };
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
