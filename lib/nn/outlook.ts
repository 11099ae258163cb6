// VOLO's outlook attention layer and the Outlooker block (spec §2.2–§2.4; timm.models.volo names).
//
// OutlookAttention(x[B,H,W,C]):
//   v      = x·W_vᵀ (+ b_v only with qkvBias)                                  → [B,H,W,C]
//   pooled = AvgPool(kernel = stride = s, ceil mode)(x)  (the identity for s = 1) → [B,h,w,C], h = ⌈H/s⌉
//   logits = pooled·W_aᵀ + b_a  → [B,h,w,M·k⁴] viewed as [B,h,w,M,k²(q),k²(r)]  (timm's (m, q, r) order)
//   y      = outlookAttention(v, logits, {k, p, s, scale = (C/M)^−1/2})          (fused core)
//   out    = y·W_oᵀ + b_o
// Backward, in reverse: proj → core (dV, dLogits) → v and attn linears → pool backward;
// dx = dx(v path) + poolBackward(dx(logits path)).
// Parameter names: v.weight, (v.bias), attn.weight, attn.bias, proj.weight, proj.bias.
//
// Outlooker(x): x ← x + OA(LN1(x)); x ← x + MLP(LN2(x)), MLP = Linear(C, ⌊C·r⌋) → GELU → Linear(⌊C·r⌋, C).
// Names: norm1.*, attn.*, norm2.*, mlp.fc1.*, mlp.fc2.* (drop path is 0 in VOLO's outlooker stage).
import { argError, bool, finiteNumber, isInt } from '../errors';
import * as ops from '../ops';
import { Device, Tensor } from '../tensor';
import { LayerNorm } from './layernorm';
import { Linear, moduleOptions, sizeArg } from './linear';
import { Mlp } from './mlp';
import { childSeed, expectGradShape, Module } from './module';

export interface OutlookAttentionModuleOptions {
  /** window size k, odd (default 3) */
  kernelSize?: number;
  /** default (k − 1)/2 = 1; must equal (k − 1)/2 (timm's shape rule: the window grid is ⌈H/s⌉ × ⌈W/s⌉) */
  padding?: number;
  /** default 2 (VOLO's outlookers) */
  stride?: number;
  /** bias on the v projection (default false) */
  qkvBias?: boolean;
  /** attention scale (default (dim/heads)^−1/2; timm's qk_scale) */
  scale?: number;
  device?: Device;
  seed?: number;
}

function positiveIntOpt(op: string, arg: string, v: unknown, dflt: number): number {
  if (v === undefined) return dflt;
  if (!isInt(v) || v < 1) throw argError(op, arg, 'a positive integer', v);
  return v;
}

export class OutlookAttention extends Module {
  readonly dim: number;
  readonly heads: number;
  readonly kernelSize: number;
  readonly padding: number;
  readonly stride: number;
  readonly scale: number;
  readonly v: Linear;
  readonly attn: Linear;
  readonly proj: Linear;
  private x: Tensor | null = null;
  private vOut: Tensor | null = null;
  private logits: Tensor | null = null;

  constructor(dim: number, heads: number, opts?: OutlookAttentionModuleOptions) {
    super();
    const op = 'OutlookAttention';
    this.dim = sizeArg(op, 'dim', dim);
    this.heads = sizeArg(op, 'heads', heads);
    if (dim % heads !== 0) throw argError(op, 'heads', `a divisor of dim ${dim}`, heads);
    const { o, device, seed } = moduleOptions(op, opts);
    const k = positiveIntOpt(op, 'options.kernelSize', o.kernelSize, 3);
    if (k % 2 === 0) throw argError(op, 'options.kernelSize', 'an odd positive integer (windows are centred)', k);
    const p = o.padding === undefined ? (k - 1) / 2 : o.padding;
    if (!isInt(p) || p !== (k - 1) / 2) {
      throw argError(op, 'options.padding', `(kernelSize − 1)/2 = ${(k - 1) / 2} (the window grid must match the ceil-mode pooled grid)`, p);
    }
    this.kernelSize = k;
    this.padding = p;
    this.stride = positiveIntOpt(op, 'options.stride', o.stride, 2);
    const qkvBias = bool(op, 'options.qkvBias', o.qkvBias, false);
    this.scale = finiteNumber(op, 'options.scale', o.scale, Math.pow(dim / heads, -0.5));
    const k4 = k * k * k * k;
    this.v = this.registerModule('v', new Linear(dim, dim, { bias: qkvBias, device, seed: childSeed(seed, 0) }));
    this.attn = this.registerModule('attn', new Linear(dim, heads * k4, { bias: true, device, seed: childSeed(seed, 1) }));
    this.proj = this.registerModule('proj', new Linear(dim, dim, { bias: true, device, seed: childSeed(seed, 2) }));
  }

  private coreOptions() {
    return { kernelSize: this.kernelSize, padding: this.padding, stride: this.stride, scale: this.scale };
  }

  private poolOptions() {
    return { kernelSize: this.stride, stride: this.stride, ceilMode: true };
  }

  forward(xIn: Tensor): Tensor {
    const op = `${this.opName}.forward`;
    const x = this.beginForward(xIn);
    if (x.rank !== 4 || x.shape[3] !== this.dim) throw argError(op, 'x', `shape [B, H, W, ${this.dim}] (channels-last, C = dim)`, x);
    const [B, H, W] = x.shape;
    const s = this.stride;
    const K2 = this.kernelSize * this.kernelSize;
    const h = Math.ceil(H / s);
    const w = Math.ceil(W / s);
    const v = this.v.forward(x);
    let pooled: Tensor | null = null;
    let logitsFlat: Tensor | null = null;
    let logits: Tensor | null = null;
    let y: Tensor | null = null;
    try {
      pooled = s > 1 ? ops.avgPool2d(x, this.poolOptions()) : x;
      logitsFlat = this.attn.forward(pooled);
      logits = logitsFlat.reshape([B, h, w, this.heads, K2, K2]);
      y = ops.outlookAttention(v, logits, this.coreOptions());
      const out = this.proj.forward(y);
      if (this.training) {
        this.x = this.keep(x);
        this.vOut = this.keepOwned(v);
        this.logits = this.keepOwned(logits);
        logits = null;
      } else {
        v.dispose();
      }
      return out;
    } catch (e) {
      v.dispose();
      throw e;
    } finally {
      if (pooled !== x) pooled?.dispose();
      logitsFlat?.dispose();
      logits?.dispose();
      y?.dispose();
    }
  }

  backward(dyIn: Tensor): Tensor {
    const op = `${this.opName}.backward`;
    const x = this.x;
    const dy = this.beginBackward(dyIn, x !== null);
    expectGradShape(op, dy, x!.shape);
    const dY = this.proj.backward(dy);
    const core = ops.outlookAttentionBackward(this.vOut!, this.logits!, dY, this.coreOptions());
    dY.dispose();
    const dxV = this.v.backward(core.dV);
    core.dV.dispose();
    const dFlat = core.dLogits.reshape([...core.dLogits.shape.slice(0, 3), -1]);
    core.dLogits.dispose();
    const dPooled = this.attn.backward(dFlat);
    dFlat.dispose();
    let dxA = dPooled;
    if (this.stride > 1) {
      dxA = ops.avgPool2dBackward(x!, dPooled, this.poolOptions()).dX;
      dPooled.dispose();
    }
    const dx = ops.add(dxV, dxA);
    dxV.dispose();
    dxA.dispose();
    return dx;
  }

  protected override clearCache(): void {
    super.clearCache();
    this.x = null;
    this.vOut = null;
    this.logits = null;
  }
}

export interface OutlookerOptions {
  kernelSize?: number;
  padding?: number;
  stride?: number;
  /** MLP hidden size = ⌊dim · mlpRatio⌋ (default 3) */
  mlpRatio?: number;
  qkvBias?: boolean;
  scale?: number;
  /** LayerNorm eps (default 1e-5, nn.LayerNorm's) */
  eps?: number;
  device?: Device;
  seed?: number;
}

export class Outlooker extends Module {
  readonly norm1: LayerNorm;
  readonly attn: OutlookAttention;
  readonly norm2: LayerNorm;
  readonly mlp: Mlp;

  constructor(dim: number, heads: number, opts?: OutlookerOptions) {
    super();
    const op = 'Outlooker';
    sizeArg(op, 'dim', dim);
    const { o, device, seed } = moduleOptions(op, opts);
    const ratio = finiteNumber(op, 'options.mlpRatio', o.mlpRatio, 3);
    const hidden = Math.floor(dim * ratio);
    if (!(ratio > 0) || hidden < 1) throw argError(op, 'options.mlpRatio', `a ratio > 0 with ⌊dim · mlpRatio⌋ >= 1 (dim ${dim})`, ratio);
    const eps = o.eps as number | undefined;
    this.norm1 = this.registerModule('norm1', new LayerNorm(dim, { eps, device }));
    this.attn = this.registerModule('attn', new OutlookAttention(dim, heads, {
      kernelSize: o.kernelSize as number | undefined,
      padding: o.padding as number | undefined,
      stride: o.stride as number | undefined,
      qkvBias: o.qkvBias as boolean | undefined,
      scale: o.scale as number | undefined,
      device,
      seed: childSeed(seed, 0),
    }));
    this.norm2 = this.registerModule('norm2', new LayerNorm(dim, { eps, device }));
    this.mlp = this.registerModule('mlp', new Mlp(dim, hidden, { device, seed: childSeed(seed, 1) }));
  }

  forward(xIn: Tensor): Tensor {
    const x = this.beginForward(xIn);
    const a = this.norm1.forward(x);
    const b = this.attn.forward(a);
    a.dispose();
    const x1 = ops.add(x, b);
    b.dispose();
    const c = this.norm2.forward(x1);
    const d = this.mlp.forward(c);
    c.dispose();
    const out = ops.add(x1, d);
    x1.dispose();
    d.dispose();
    return out;
  }

  backward(dyIn: Tensor): Tensor {
    const dy = this.beginBackward(dyIn, this.norm2.cachedTensors() > 0);
    // x2 = x1 + mlp(norm2(x1)):  dx1 = dy + norm2ᵀ(mlpᵀ(dy))
    const dc = this.mlp.backward(dy);
    const dx1n = this.norm2.backward(dc);
    dc.dispose();
    const dx1 = ops.add(dy, dx1n);
    dx1n.dispose();
    // x1 = x + attn(norm1(x)):  dx = dx1 + norm1ᵀ(attnᵀ(dx1))
    const da = this.attn.backward(dx1);
    const dxn = this.norm1.backward(da);
    da.dispose();
    const dx = ops.add(dx1, dxn);
    dx1.dispose();
    dxn.dispose();
    return dx;
  }
}
