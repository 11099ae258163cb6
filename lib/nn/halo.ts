// HaloNet's halo attention layer with timm's exact semantics (spec §3.1–§3.4; timm HaloAttn names).
//
// HaloAttention(x[B,H,W,C]) (channels-last):
//   strided queries (stride 2 and an even block, avgDown false): x_q = x at the even pixels
//   (a 1×1 conv with stride 2 = the top-left pixel of every 2×2 cell); otherwise x_q = x.
//   q  = x_q·W_qᵀ (+ b_q with qkvBias)  → [B,Hq,Wq,M·dqk], head-major channels m·dqk + e
//   kv = x·W_kvᵀ  (+ b_kv with qkvBias) → [B,H,W,M·(dqk+dv)], INTERLEAVED per head: head m owns
//        channels [m·(dqk+dv), (m+1)·(dqk+dv)), its key first, then its value
//   o  = haloAttention(q, k, v, pos_embed.height_rel, pos_embed.width_rel,
//                      {blockSize, haloSize, stride (strided: 2, else 1), scale dqk^−1/2, scalePosEmbed})
//        → [B,Hq,Wq,M·dv] (no output projection, as timm)
//   avg-pool mode (stride 2 with an odd block, or avgDown): full-resolution attention, then 2×2 average
//   pooling in FLOOR mode.
// Parameter names: q.weight, (q.bias), kv.weight, (kv.bias), pos_embed.height_rel, pos_embed.width_rel.
// timm's q/kv are 1×1 convs: their checkpoint weights [out, in, 1, 1] are our [out, in] (reshape them).
// Init as timm's reset_parameters: q, kv weights trunc-normal with std in^−1/2, tables trunc-normal with
// std dqk^−1/2 (biases, when present, PyTorch's conv default U(±in^−1/2)).
// Backward: core → (dQ, dK, dV, dRelH, dRelW); dKV re-interleaved → kv backward; dQ → q backward
// (scattered back onto the even pixels in strided mode); dx = dx_kv + dx_q.
import { argError, bool } from '../errors';
import * as ops from '../ops';
import { stridedCopy, stridesOf, zeroFill } from '../ops/strided';
import { Device, empty, keep as unscope, Tensor } from '../tensor';
import { truncNormal } from './init';
import { Linear, moduleOptions, sizeArg } from './linear';
import { childSeed, expectGradShape, Module, Parameter, withTemporaries } from './module';

export interface HaloAttentionModuleOptions {
  /** output channels, a multiple of heads (default dim) */
  dimOut?: number;
  /** M (default 8) */
  heads?: number;
  /** query/key size per head; default make_divisible(dimOut·qkRatio, 8)/heads (timm) */
  dimHead?: number;
  /** block size b (default 8) */
  blockSize?: number;
  /** halo h (default 3) */
  haloSize?: number;
  /** 1 (default) or 2 */
  stride?: number;
  /** default 1 */
  qkRatio?: number;
  /** bias on the q and kv projections (default false) */
  qkvBias?: boolean;
  /** stride 2 through full-resolution attention + 2×2 average pooling even for an even block (default false) */
  avgDown?: boolean;
  /** τ also scales the relative logits (default false) */
  scalePosEmbed?: boolean;
  device?: Device;
  seed?: number;
}

/** timm's make_divisible(v, divisor, round_limit 0.9). */
function makeDivisible(v: number, divisor = 8): number {
  let r = Math.max(divisor, Math.floor((v + divisor / 2) / divisor) * divisor);
  if (r < 0.9 * v) r += divisor;
  return r;
}

/** timm's PosEmbedRel: the two relative-position tables (shared by the heads). */
export class HaloPosEmbed extends Module {
  readonly heightRel: Parameter;
  readonly widthRel: Parameter;

  constructor(win: number, dimHead: number, device: Device, seed?: number) {
    super();
    const std = Math.pow(dimHead, -0.5);
    this.heightRel = this.registerParameter('height_rel', truncNormal([2 * win - 1, dimHead], std, device, seed, 0));
    this.widthRel = this.registerParameter('width_rel', truncNormal([2 * win - 1, dimHead], std, device, seed, 1));
  }

  forward(): Tensor {
    throw new Error('HaloPosEmbed.forward: the tables are read by HaloAttention directly');
  }

  backward(): Tensor {
    throw new Error('HaloPosEmbed.backward: HaloAttention accumulates the table gradients');
  }
}

export class HaloAttention extends Module {
  readonly dim: number;
  readonly dimOut: number;
  readonly heads: number;
  readonly dimHeadQk: number;
  readonly dimHeadV: number;
  readonly blockSize: number;
  readonly haloSize: number;
  readonly stride: number;
  /** 2 with strided queries, else 1 */
  readonly blockStride: number;
  readonly useAvgPool: boolean;
  readonly scale: number;
  readonly scalePosEmbed: boolean;
  readonly q: Linear;
  readonly kv: Linear;
  readonly posEmbed: HaloPosEmbed;
  private x: Tensor | null = null;
  private qT: Tensor | null = null;
  private kT: Tensor | null = null;
  private vT: Tensor | null = null;
  private core: { out: Tensor; lse: Tensor } | null = null;

  constructor(dim: number, opts?: HaloAttentionModuleOptions) {
    super();
    const op = 'HaloAttention';
    this.dim = sizeArg(op, 'dim', dim);
    const { o, device, seed } = moduleOptions(op, opts);
    const int = (name: string, dflt: number, min = 1) =>
      o[name] === undefined ? dflt : sizeArg(op, `options.${name}`, o[name], min);
    this.dimOut = int('dimOut', dim);
    this.heads = int('heads', 8);
    if (this.dimOut % this.heads !== 0) throw argError(op, 'options.heads', `a divisor of dimOut ${this.dimOut}`, this.heads);
    this.dimHeadV = this.dimOut / this.heads;
    const ratio = o.qkRatio === undefined ? 1 : o.qkRatio;
    if (typeof ratio !== 'number' || !(ratio > 0) || !Number.isFinite(ratio)) throw argError(op, 'options.qkRatio', 'a finite number > 0', ratio);
    if (o.dimHead !== undefined) {
      this.dimHeadQk = sizeArg(op, 'options.dimHead', o.dimHead);
    } else {
      const qk = makeDivisible(this.dimOut * ratio, 8);
      if (qk % this.heads !== 0) {
        throw argError(op, 'options.heads', `a divisor of make_divisible(dimOut·qkRatio, 8) = ${qk} (or pass options.dimHead)`, this.heads);
      }
      this.dimHeadQk = qk / this.heads;
    }
    this.blockSize = int('blockSize', 8);
    this.haloSize = int('haloSize', 3, 0);
    this.stride = int('stride', 1);
    if (this.stride !== 1 && this.stride !== 2) throw argError(op, 'options.stride', '1 or 2', this.stride);
    const avgDown = bool(op, 'options.avgDown', o.avgDown, false);
    this.useAvgPool = this.stride === 2 && (avgDown || this.blockSize % 2 !== 0);
    this.blockStride = this.stride === 2 && !this.useAvgPool ? 2 : 1;
    this.scalePosEmbed = bool(op, 'options.scalePosEmbed', o.scalePosEmbed, false);
    const qkvBias = bool(op, 'options.qkvBias', o.qkvBias, false);
    this.scale = Math.pow(this.dimHeadQk, -0.5);
    const win = this.blockSize + 2 * this.haloSize;
    const proj = (name: string, out: number, i: number): Linear => {
      const l = new Linear(dim, out, { bias: qkvBias, device, seed: childSeed(seed, i) });
      // timm re-initialises the conv weights: trunc-normal, std in^−1/2.
      const w = truncNormal([out, dim], Math.pow(dim, -0.5), device, childSeed(seed, 10 + i));
      l.weight.value.dispose();
      l.weight.value = unscope(w);
      return this.registerModule(name, l);
    };
    this.q = proj('q', this.heads * this.dimHeadQk, 0);
    this.kv = proj('kv', this.heads * (this.dimHeadQk + this.dimHeadV), 1);
    this.posEmbed = this.registerModule('pos_embed', new HaloPosEmbed(win, this.dimHeadQk, device, childSeed(seed, 2)));
  }

  private coreOptions() {
    return {
      blockSize: this.blockSize, haloSize: this.haloSize, stride: this.blockStride,
      scale: this.scale, scalePosEmbed: this.scalePosEmbed,
    };
  }

  /** Output shape for an input [B,H,W,dim]. */
  outputShape(B: number, H: number, W: number): number[] {
    if (this.useAvgPool) return [B, Math.floor(H / 2), Math.floor(W / 2), this.dimOut];
    return [B, H / this.blockStride, W / this.blockStride, this.dimOut];
  }

  /** x[B,H,W,C] → x at the even pixels [B,H/2,W/2,C]: one strided copy. */
  private subsample(x: Tensor): Tensor {
    const [B, H, W, C] = x.shape;
    const shape = [B, H / 2, W / 2, C];
    const out = empty('HaloAttention.forward', shape, 'float32', x.device);
    stridedCopy('HaloAttention.forward', x, 'x', out, shape, [H * W * C, 2 * W * C, 2 * C, 1], stridesOf(shape));
    return out;
  }

  /** Gradient of subsample: dXq[B,H/2,W/2,C] scattered onto the even pixels of a zero [B,H,W,C]. */
  private subsampleBackward(x: Tensor, dXq: Tensor): Tensor {
    const op = 'HaloAttention.backward';
    const [B, H, W, C] = x.shape;
    const dx = empty(op, x.shape, 'float32', x.device);
    zeroFill(op, dx);
    stridedCopy(op, dXq, 'dQ', dx, dXq.shape, stridesOf(dXq.shape), [H * W * C, 2 * W * C, 2 * C, 1]);
    return dx;
  }

  forward(xIn: Tensor): Tensor {
    const op = `${this.opName}.forward`;
    const x = this.beginForward(xIn);
    if (x.rank !== 4 || x.shape[3] !== this.dim) throw argError(op, 'x', `shape [B, H, W, ${this.dim}] (channels-last, C = dim)`, x);
    const [B, H, W] = x.shape;
    const b = this.blockSize;
    if (H < 1 || W < 1 || H % b !== 0 || W % b !== 0) {
      throw argError(op, 'x', `a map H×W whose sides are positive multiples of blockSize ${b} (dimensions 1, 2)`, x);
    }
    const M = this.heads;
    const dqk = this.dimHeadQk;
    const dv = this.dimHeadV;
    const s = this.blockStride;
    return withTemporaries((track, untrack) => {
      const xq = s === 2 ? track(this.subsample(x)) : x;
      const qFlat = track(this.q.forward(xq));
      const q = track(qFlat.reshape([B, H / s, W / s, M, dqk]));
      const kvFlat = track(this.kv.forward(x));
      const kv = track(kvFlat.reshape([B, H, W, M, dqk + dv]));
      const k = track(ops.slice(kv, { axis: 4, start: 0, end: dqk }));
      const v = track(ops.slice(kv, { axis: 4, start: dqk, end: dqk + dv }));
      const core = ops.haloAttention(q, k, v, this.posEmbed.heightRel.value, this.posEmbed.widthRel.value, this.coreOptions());
      track(core.out);
      track(core.lse);
      const y = track(core.out.reshape([B, H / s, W / s, M * dv]));
      const out = this.useAvgPool ? ops.avgPool2d(y, { kernelSize: 2, stride: 2, ceilMode: false }) : y.reshape(y.shape);
      if (this.training) {
        this.x = this.keep(x);
        this.qT = this.keep(q);
        this.kT = this.keepOwned(k);
        this.vT = this.keepOwned(v);
        this.core = { out: this.keepOwned(core.out), lse: this.keepOwned(core.lse) };
        for (const t of [k, v, core.out, core.lse]) untrack(t);
      }
      return out;
    });
  }

  backward(dyIn: Tensor): Tensor {
    const op = `${this.opName}.backward`;
    const x = this.x;
    const dy = this.beginBackward(dyIn, x !== null);
    const [B, H, W] = x!.shape;
    expectGradShape(op, dy, this.outputShape(B, H, W));
    const M = this.heads;
    const dqk = this.dimHeadQk;
    const dv = this.dimHeadV;
    const s = this.blockStride;
    return withTemporaries((track) => {
      const coreOut = this.core!.out;
      const dY = this.useAvgPool
        ? track(ops.avgPool2dBackward(track(coreOut.reshape([B, H, W, M * dv])), dy, { kernelSize: 2, stride: 2, ceilMode: false }).dX)
        : dy;
      const dO = track(dY.reshape(coreOut.shape));
      const g = ops.haloAttentionBackward(this.qT!, this.kT!, this.vT!, this.posEmbed.heightRel.value,
        this.posEmbed.widthRel.value, coreOut, this.core!.lse, dO, this.coreOptions());
      track(g.dQ);
      track(g.dK);
      track(g.dV);
      this.posEmbed.heightRel.accumulate(g.dRelH);
      this.posEmbed.widthRel.accumulate(g.dRelW);
      const dKV = track(ops.concat([g.dK, g.dV], { axis: 4 }));
      const dxKV = track(this.kv.backward(track(dKV.reshape([B, H, W, M * (dqk + dv)]))));
      const dXq = track(this.q.backward(track(g.dQ.reshape([B, H / s, W / s, M * dqk]))));
      const dxQ = s === 2 ? track(this.subsampleBackward(x!, dXq)) : dXq;
      return ops.add(dxKV, dxQ);
    });
  }

  protected override clearCache(): void {
    super.clearCache();
    this.x = null;
    this.qT = null;
    this.kT = null;
    this.vT = null;
    this.core = null;
  }
}
