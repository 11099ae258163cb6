// Loads the compiled addon (build/Release/visattn.node) and types its raw surface.
// Everything above this file talks to the addon only through `native`.
import * as fs from 'fs';
import * as path from 'path';

/** Opaque handle on a device allocation (one per tensor view; the allocation is shared). */
export interface NativeStorage {
  readonly __nativeStorage: unique symbol;
}
/** Errors come back as strings; TypeScript creates the Error objects. */
export type NativeResult = string | undefined;

export interface NativeCudaDevice {
  name: string;
  computeCapability: string;
  totalMemory: number;
  multiProcessors: number;
}
export interface NativeInfo {
  version: string;
  devices: string[];
  cpu: { threads: number; isa: string };
  cuda: {
    compiled: boolean;
    available: boolean;
    reason: string | null;
    runtimeVersion: number;
    driverVersion: number;
    devices: NativeCudaDevice[];
  };
}
export interface NativeMemory {
  device: 'cpu' | 'emu' | 'cuda';
  storages: number;
  bytes: number;
  allocatedBytes: number;
  reservedBytes: number;
}

export interface NativeProbeFma {
  gflops: number;
  gflopsMedian: number;
  isa: string;
  threads: number;
  seconds: number;
}
export interface NativeProbeBandwidth {
  gbps: number;
  gbpsMedian: number;
  isa: string;
  threads: number;
  bytesPerArray: number;
  reps: number;
}

type S = NativeStorage;
export interface NativeAddon {
  info(): NativeInfo;
  initDevice(device: number): NativeResult;
  alloc(device: number, bytes: number): S | string;
  retain(s: S): S | string;
  release(s: S): void;
  upload(s: S, data: Float32Array | Int32Array | Uint32Array): NativeResult;
  download(s: S, bytes: number): Promise<ArrayBuffer | string>;
  downloadSync(s: S, bytes: number): ArrayBuffer | string;
  /** Cross-device copy src → dst without blocking (the destination stream waits for the data). */
  transfer(src: S, dst: S): NativeResult;
  synchronize(device: number): Promise<NativeResult>;
  synchronizeSync(device: number): NativeResult;
  pending(device: number): number;
  memory(): NativeMemory[];
  selfTest(device: number, name: string): Float32Array | string;
  /** Machine-limit probes for the benchmarks (synchronous: they block for the requested time). */
  probeFma(threads: number, seconds: number): NativeProbeFma | string;
  probeBandwidth(threads: number, bytesPerArray: number): NativeProbeBandwidth | string;
  /** Testing hook: enqueues an op that fails asynchronously on the device's stream. */
  injectFault(device: number): NativeResult;

  binary(op: number, a: S, b: S, out: S, outer: number, inner: number, aBcast: boolean, bBcast: boolean): NativeResult;
  affine(x: S, out: S, n: number, alpha: number, beta: number): NativeResult;
  unary(op: number, x: S, out: S, n: number): NativeResult;
  unaryBackward(op: number, x: S, dy: S, dx: S, n: number): NativeResult;
  matmul(
    a: S, b: S, c: S, bias: S | null, batch: number, M: number, N: number, K: number,
    strideA: number, strideB: number, strideC: number, transA: boolean, transB: boolean, alpha: number, beta: number,
  ): NativeResult;
  softmax(x: S, y: S, rows: number, cols: number, log: boolean): NativeResult;
  softmaxBackward(x: S, dy: S, dx: S, rows: number, cols: number, log: boolean): NativeResult;
  layerNorm(x: S, gamma: S, beta: S, y: S, rows: number, cols: number, eps: number): NativeResult;
  layerNormBackward(
    x: S, gamma: S, dy: S, dx: S, dgamma: S, dbeta: S, rows: number, cols: number, eps: number,
  ): NativeResult;
  reduce(x: S, y: S, outer: number, len: number, inner: number, scale: number): NativeResult;
  copy(
    src: S, dst: S, shape: number[], srcStride: number[], dstStride: number[],
    srcOffset: number, dstOffset: number, scale: number,
  ): NativeResult;
  fill(dst: S, n: number, bits: number): NativeResult;
  avgPool2d(x: S, y: S, B: number, H: number, W: number, C: number, Ho: number, Wo: number, kernel: number, stride: number): NativeResult;
  avgPool2dBackward(dy: S, dx: S, B: number, H: number, W: number, C: number, Ho: number, Wo: number, kernel: number, stride: number): NativeResult;
  random(out: S, n: number, seed: number, offset: number, kind: number, mean: number, std: number): NativeResult;

  outlookAttention(
    v: S, logits: S, out: S, B: number, H: number, W: number, C: number, h: number, w: number,
    heads: number, kernel: number, pad: number, stride: number, scale: number,
  ): NativeResult;
  outlookAttentionBackward(
    v: S, logits: S, dOut: S, dV: S, dLogits: S, B: number, H: number, W: number, C: number, h: number, w: number,
    heads: number, kernel: number, pad: number, stride: number, scale: number,
  ): NativeResult;
  haloAttention(
    q: S, k: S, v: S, relH: S, relW: S, out: S, lse: S, B: number, H: number, W: number,
    heads: number, dk: number, dv: number, block: number, halo: number, stride: number,
    scale: number, scalePosEmbed: boolean,
  ): NativeResult;
  haloAttentionBackward(
    q: S, k: S, v: S, relH: S, relW: S, out: S, lse: S, dOut: S, dQ: S, dK: S, dV: S, dRelH: S, dRelW: S,
    B: number, H: number, W: number, heads: number, dk: number, dv: number, block: number, halo: number,
    stride: number, scale: number, scalePosEmbed: boolean,
  ): NativeResult;
  dropout(x: S, out: S, n: number, p: number, seed: number, offset: number): NativeResult;
  crossAttention(
    q: S, k: S, v: S, out: S, lse: S, B: number, Bq: number, Lq: number, Lk: number,
    heads: number, d: number, dv: number, scale: number, dropout: number, seed: number,
  ): NativeResult;
  crossAttentionBackward(
    q: S, k: S, v: S, out: S, lse: S, dOut: S, dQ: S, dK: S, dV: S, B: number, Bq: number, Lq: number, Lk: number,
    heads: number, d: number, dv: number, scale: number, dropout: number, seed: number,
  ): NativeResult;
  groupFC(x: S, w: S, bias: S | null, out: S, B: number, K: number, D: number, g: number, N: number): NativeResult;
  groupFCBackward(x: S, w: S, dOut: S, dX: S, dW: S, dBias: S, B: number, K: number, D: number, g: number, N: number): NativeResult;
  /** kind 0 = asymmetric loss, 1 = sigmoid BCE; per-element loss and (optional) gradient */
  multiLabelLoss(
    logits: S, targets: S, loss: S, grad: S | null, n: number, kind: number,
    gammaPos: number, gammaNeg: number, clip: number, eps: number, focalGrad: boolean,
  ): NativeResult;
  /** assign is an int32 storage; logits may be null (not computed) */
  kmeansCrossAttention(
    pixels: S, centers: S, values: S, update: S, assign: S, logits: S | null,
    B: number, N: number, L: number, D: number, Dv: number,
  ): NativeResult;
  kmeansCrossAttentionBackward(assign: S, dUpdate: S, dValues: S, B: number, N: number, L: number, Dv: number): NativeResult;
  l2Normalize(x: S, y: S, rows: number, cols: number, eps: number): NativeResult;
  l2NormalizeBackward(x: S, dy: S, dx: S, rows: number, cols: number, eps: number): NativeResult;
}

export function packageRoot(): string {
  // lib/native.ts runs from lib/ (ts-jest, ts-node) or from dist/lib/ (compiled).
  let dir = __dirname;
  for (let i = 0; i < 4; i++) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    dir = path.dirname(dir);
  }
  return path.resolve(__dirname, '..');
}

function load(): NativeAddon {
  const root = packageRoot();
  const candidates = [
    process.env.VISATTN_ADDON,
    path.join(root, 'build', 'Release', 'visattn.node'),
    path.join(root, 'build', 'Debug', 'visattn.node'),
  ].filter((p): p is string => !!p);
  const found = candidates.find((p) => fs.existsSync(p));
  if (!found) {
    throw new Error(
      `visattn: the native addon was not found (looked for ${candidates.join(', ')}).\n` +
        `  Remedies: run \`npm install\` (or \`npm run build\`) in ${root}; it needs cmake >= 3.18 and a C++17 compiler.\n` +
        `  For a CPU-only build without nvcc: VISATTN_CUDA=OFF npm run build`,
    );
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(found) as NativeAddon;
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const hint = /GLIBC|GLIBCXX/.test(msg)
      ? 'the addon was built against a newer C/C++ runtime than this machine has: rebuild here with `npm run build`'
      : /undefined symbol/.test(msg)
        ? 'the addon is stale or partially built: rebuild with `npm run build`'
        : 'rebuild with `npm run build`; for a CPU-only build: VISATTN_CUDA=OFF npm run build';
    throw new Error(`visattn: failed to load ${found}: ${msg}\n  Remedy: ${hint}`);
  }
}

export const native: NativeAddon = load();
