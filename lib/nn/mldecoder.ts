// ML-Decoder's classification head (spec §1.1–§1.3; the reference MLDecoder with its one
// TransformerDecoderLayerOptimal, whose self-attention is removed). Channels-last features:
// x[B,H,W,C] (tokens in raster order y·W + x) or tokens x[B,T,C]; logits [B,N].
//
//   E  = relu(x·W_eᵀ + b_e)                                   embed_standart        [B,T,D]
//   t0 = query_embed.weight (FROZEN, N(0,1) init, in the state dict)                [K,D]
//   t1 = t0 + dropout1(t0)   (training: an independent mask per image → [B,K,D]; eval: 2·t0, [1,K,D])
//   t2 = norm1(t1)
//   a  = out_proj(crossAttention(t2·W_qᵀ + b_q, E·W_kᵀ + b_k, E·W_vᵀ + b_v, dropout p on the
//        probabilities))   (W_q, W_k, W_v = the rows of in_proj_weight; M heads of D/M)   [B,K,D]
//   t3 = t2 + dropout2(a);  t4 = norm2(t3)
//   t5 = t4 + dropout3(linear2(dropout(relu(linear1(t4)))));  h = norm3(t5)
//   logits = groupFC(h, duplicate_pooling[K,D,g], duplicate_pooling_bias[N])
// K = min(numGroups, N), g = ⌈N/K⌉ (a true ceiling; the reference's int(N/K + 0.999) is not, spec §1.6).
// In eval mode the query branch does not depend on the input: it runs once on [1,K,D] and the
// cross-attention reads the shared queries (Bq = 1) without broadcasting them.
// Parameter names are the official checkpoint's: decoder.embed_standart.*, decoder.query_embed.weight,
// decoder.layers.0.{norm1,multihead_attn.in_proj_weight,multihead_attn.in_proj_bias,
// multihead_attn.out_proj,linear1,linear2,norm2,norm3}.*, decoder.duplicate_pooling,
// decoder.duplicate_pooling_bias. (timm's ml_decoder puts them at the head's top level: strip 'decoder.'.)
import { argError, finiteNumber } from '../errors';
import * as ops from '../ops';
import { stridedCopy } from '../ops/strided';
import { Device, empty, keep as unscope, randn, Tensor } from '../tensor';
import { ReLU } from './activation';
import { constant, uniform } from './init';
import { Dropout } from './dropout';
import { LayerNorm } from './layernorm';
import { Linear, moduleOptions, sizeArg } from './linear';
import { childSeed, expectGradShape, Module, Parameter, withTemporaries } from './module';

export interface MLDecoderHeadOptions {
  /** feature channels C of the backbone (default 2048) */
  inDim?: number;
  /** K before min(K, N) (default 100) */
  numGroups?: number;
  /** D (default 768) */
  embedDim?: number;
  /** M (default 8) */
  heads?: number;
  /** FFN hidden size (default 2048) */
  ffnDim?: number;
  /** every dropout of the decoder layer, including the attention probabilities (default 0.1) */
  dropout?: number;
  device?: Device;
  seed?: number;
}

let autoAttnSeed = 0x3a77;

/** Mixes a stream seed and a call counter into one seed < 2^52 (for the attention-probability mask). */
function callSeed(seed: number, call: number): number {
  return (seed * 1000003 + call * 7919 + 1) % 2 ** 52;
}

/**
 * PyTorch nn.MultiheadAttention used as cross-attention (query ≠ key = value source), with packed
 * in_proj_weight [3D, D] / in_proj_bias [3D] and out_proj; the fused va.ops.crossAttention core.
 * forward(x) is not defined for it: use attend(query, memory) / attendBackward(dy).
 */
export class MultiheadCrossAttention extends Module {
  readonly embedDim: number;
  readonly heads: number;
  readonly dropoutP: number;
  readonly inProjWeight: Parameter;
  readonly inProjBias: Parameter;
  readonly outProj: Linear;
  private seed: number;
  private calls = 0;
  private saved: {
    query: Tensor; memory: Tensor; q: Tensor; k: Tensor; v: Tensor; out: Tensor; lse: Tensor; seed: number;
  } | null = null;

  constructor(embedDim: number, heads: number, dropout: number, device: Device, seed?: number) {
    super();
    this.embedDim = embedDim;
    this.heads = heads;
    this.dropoutP = dropout;
    this.seed = seed ?? autoAttnSeed++;
    const D = embedDim;
    // PyTorch: xavier_uniform_ on in_proj_weight, zero in_proj_bias and out_proj.bias.
    this.inProjWeight = this.registerParameter('in_proj_weight', uniform([3 * D, D], Math.sqrt(6 / (4 * D)), device, seed, 0));
    this.inProjBias = this.registerParameter('in_proj_bias', constant([3 * D], 0, device));
    this.outProj = this.registerModule('out_proj', new Linear(D, D, { device, seed: childSeed(seed, 1) }));
    this.outProj.bias!.value.dispose();
    this.outProj.bias!.value = unscope(constant([D], 0, device));
  }

  forward(): Tensor {
    throw new Error('MultiheadCrossAttention.forward: use attend(query, memory)');
  }

  backward(): Tensor {
    throw new Error('MultiheadCrossAttention.backward: use attendBackward(dy)');
  }

  reseed(seed: number): void {
    this.seed = seed;
    this.calls = 0;
  }

  /** The probability-mask seed the next training forward will pass to crossAttention. */
  nextSeed(): number {
    return callSeed(this.seed, this.calls);
  }

  /** query [Bq,K,D] (Bq = 1 or B), memory [B,T,D] → [B,K,D] */
  attend(query: Tensor, memory: Tensor): Tensor {
    this.beginForward(query);
    this.saved = null;
    const D = this.embedDim;
    const M = this.heads;
    const [Bq, K] = query.shape;
    const [B, T] = memory.shape;
    return withTemporaries((t) => {
      const w = this.inProjWeight.value;
      const b = this.inProjBias.value;
      const q = t(ops.linear(query, t(ops.slice(w, { axis: 0, start: 0, end: D })), t(ops.slice(b, { axis: 0, start: 0, end: D }))))
        .reshape([Bq, K, M, D / M]);
      t(q);
      const kv = t(ops.linear(memory, t(ops.slice(w, { axis: 0, start: D, end: 3 * D })), t(ops.slice(b, { axis: 0, start: D, end: 3 * D }))));
      const k = t(t(ops.slice(kv, { axis: 2, start: 0, end: D })).reshape([B, T, M, D / M]));
      const v = t(t(ops.slice(kv, { axis: 2, start: D, end: 2 * D })).reshape([B, T, M, D / M]));
      const p = this.training ? this.dropoutP : 0;
      const seed = callSeed(this.seed, this.calls);
      if (p > 0) this.calls++;
      const r = ops.crossAttention(q, k, v, { scale: Math.pow(D / M, -0.5), dropout: p, seed });
      t(r.out);
      t(r.lse);
      const y = this.outProj.forward(t(r.out.reshape([B, K, D])));
      if (this.training) {
        this.saved = {
          query: this.keep(query), memory: this.keep(memory), q: this.keep(q), k: this.keep(k), v: this.keep(v),
          out: this.keep(r.out), lse: this.keep(r.lse), seed,
        };
      }
      return y;
    });
  }

  /** dy [B,K,D] → {dQuery [Bq,K,D], dMemory [B,T,D]}; accumulates in_proj_* and out_proj.* gradients. */
  attendBackward(dy: Tensor): { dQuery: Tensor; dMemory: Tensor } {
    const c = this.saved;
    this.beginBackward(dy, c !== null);
    const D = this.embedDim;
    return withTemporaries((t) => {
      const { query, memory, q, k, v, out, lse, seed } = c!;
      const dOut = t(t(this.outProj.backward(dy)).reshape(out.shape));
      const p = this.training ? this.dropoutP : 0;
      const g = ops.crossAttentionBackward(q, k, v, out, lse, dOut, { scale: Math.pow(D / this.heads, -0.5), dropout: p, seed });
      t(g.dQ);
      t(g.dK);
      t(g.dV);
      const w = this.inProjWeight.value;
      const lq = ops.linearBackward(query, t(ops.slice(w, { axis: 0, start: 0, end: D })), t(g.dQ.reshape([...query.shape])), { bias: true });
      const [B, T] = memory.shape;
      const dKV = t(ops.concat([t(g.dK.reshape([B, T, D])), t(g.dV.reshape([B, T, D]))], { axis: 2 }));
      const lkv = ops.linearBackward(memory, t(ops.slice(w, { axis: 0, start: D, end: 3 * D })), dKV, { bias: true });
      for (const x of [lq.dW, lq.dBias!, lkv.dW, lkv.dBias!]) t(x);
      this.inProjWeight.accumulate(ops.concat([lq.dW, lkv.dW], { axis: 0 }));
      this.inProjBias.accumulate(ops.concat([lq.dBias!, lkv.dBias!], { axis: 0 }));
      return { dQuery: lq.dX, dMemory: lkv.dX };
    });
  }

  protected override clearCache(): void {
    super.clearCache();
    this.saved = null;
  }
}

/** The reference's TransformerDecoderLayerOptimal (self-attention removed, post-norm). */
export class DecoderLayerOptimal extends Module {
  readonly norm1: LayerNorm;
  readonly dropout: Dropout;
  readonly dropout1: Dropout;
  readonly dropout2: Dropout;
  readonly dropout3: Dropout;
  readonly multihead_attn: MultiheadCrossAttention;
  readonly linear1: Linear;
  readonly linear2: Linear;
  readonly norm2: LayerNorm;
  readonly norm3: LayerNorm;
  readonly act: ReLU;
  private shapes: { t2: number[] } | null = null;

  constructor(D: number, heads: number, ffn: number, p: number, device: Device, seed?: number) {
    super();
    // registration order = the reference's attribute order (state-dict key order)
    this.norm1 = this.registerModule('norm1', new LayerNorm(D, { device }));
    this.dropout = this.registerModule('dropout', new Dropout(p, { seed: childSeed(seed, 10) }));
    this.dropout1 = this.registerModule('dropout1', new Dropout(p, { seed: childSeed(seed, 11) }));
    this.dropout2 = this.registerModule('dropout2', new Dropout(p, { seed: childSeed(seed, 12) }));
    this.dropout3 = this.registerModule('dropout3', new Dropout(p, { seed: childSeed(seed, 13) }));
    this.multihead_attn = this.registerModule('multihead_attn', new MultiheadCrossAttention(D, heads, p, device, childSeed(seed, 14)));
    this.linear1 = this.registerModule('linear1', new Linear(D, ffn, { device, seed: childSeed(seed, 15) }));
    this.linear2 = this.registerModule('linear2', new Linear(ffn, D, { device, seed: childSeed(seed, 16) }));
    this.norm2 = this.registerModule('norm2', new LayerNorm(D, { device }));
    this.norm3 = this.registerModule('norm3', new LayerNorm(D, { device }));
    this.act = this.registerModule('activation', new ReLU());
  }

  forward(): Tensor {
    throw new Error('DecoderLayerOptimal.forward: use decode(tgt, memory)');
  }

  backward(): Tensor {
    throw new Error('DecoderLayerOptimal.backward: use decodeBackward(dy)');
  }

  reseed(seed: number): void {
    [this.dropout, this.dropout1, this.dropout2, this.dropout3].forEach((d, i) => d.reseed(childSeed(seed, 10 + i)!));
    this.multihead_attn.reseed(childSeed(seed, 14)!);
  }

  /** tgt [Bt,K,D] (Bt = 1 or B), memory [B,T,D] → [B,K,D] */
  decode(tgt: Tensor, memory: Tensor): Tensor {
    this.beginForward(tgt);
    this.shapes = null;
    return withTemporaries((t) => {
      const t1 = t(ops.add(tgt, t(this.dropout1.forward(tgt))));
      const t2 = t(this.norm1.forward(t1));
      const a = t(this.multihead_attn.attend(t2, memory));
      const t3 = t(ops.add(t2, t(this.dropout2.forward(a))));
      const t4 = t(this.norm2.forward(t3));
      const f = t(this.linear2.forward(t(this.dropout.forward(t(this.act.forward(t(this.linear1.forward(t4))))))));
      const t5 = t(ops.add(t4, t(this.dropout3.forward(f))));
      if (this.training) this.shapes = { t2: [...t2.shape] };
      return this.norm3.forward(t5);
    });
  }

  /** dy [B,K,D] → {dTgt [Bt,K,D], dMemory [B,T,D]} */
  decodeBackward(dy: Tensor): { dTgt: Tensor; dMemory: Tensor } {
    this.beginBackward(dy, this.shapes !== null);
    return withTemporaries((t) => {
      const dT5 = t(this.norm3.backward(dy));
      // t5 = t4 + dropout3(linear2(dropout(relu(linear1(t4)))))
      const dF = t(this.dropout3.backward(dT5));
      const dT4b = t(this.linear1.backward(t(this.act.backward(t(this.dropout.backward(t(this.linear2.backward(dF))))))));
      const dT4 = t(ops.add(dT5, dT4b));
      const dT3 = t(this.norm2.backward(dT4));
      // t3 = t2 + dropout2(a)  (t2 may be [1,K,D] broadcast over the batch)
      const dA = t(this.dropout2.backward(dT3));
      const att = this.multihead_attn.attendBackward(dA);
      t(att.dQuery);
      const dT2direct = this.reduceTo(dT3, this.shapes!.t2, t);
      const dT2 = t(ops.add(dT2direct, att.dQuery));
      const dT1 = t(this.norm1.backward(dT2));
      // t1 = tgt + dropout1(tgt)
      const dTgt = ops.add(dT1, t(this.dropout1.backward(dT1)));
      return { dTgt, dMemory: att.dMemory };
    });
  }

  /** Sums g [B,K,D] over the batch when `shape` is [1,K,D] (the gradient of a broadcast). */
  private reduceTo(g: Tensor, shape: number[], t: <X extends Tensor>(x: X) => X): Tensor {
    if (g.shape[0] === shape[0]) return g;
    return t(ops.sum(g, { axis: 0, keepDims: true }));
  }

  protected override clearCache(): void {
    super.clearCache();
    this.shapes = null;
  }
}

/** The decoder container: names match the reference's `decoder.*` keys. */
class MLDecoderBody extends Module {
  readonly layers: Module;
  readonly layer: DecoderLayerOptimal;
  readonly embed_standart: Linear;
  readonly embedAct: ReLU;
  readonly queryEmbed: Parameter;
  readonly duplicatePooling: Parameter;
  readonly duplicatePoolingBias: Parameter;

  constructor(N: number, K: number, g: number, inDim: number, D: number, heads: number, ffn: number, p: number,
    device: Device, seed?: number) {
    super();
    this.layers = this.registerModule('layers', new LayerList());
    this.layer = (this.layers as LayerList).add(new DecoderLayerOptimal(D, heads, ffn, p, device, childSeed(seed, 0)));
    this.embed_standart = this.registerModule('embed_standart', new Linear(inDim, D, { device, seed: childSeed(seed, 1) }));
    this.embedAct = this.registerModule('embed_act', new ReLU()); // no parameters: no state-dict key
    const qe = this.registerModule('query_embed', new ParamHolder());
    this.queryEmbed = qe.hold('weight', randn([K, D], { device, seed: childSeed(seed, 2) }), false);
    // xavier_normal_ on [K, D, g]: fan_in = D·g, fan_out = K·g
    const std = Math.sqrt(2 / (D * g + K * g));
    this.duplicatePooling = this.registerParameter('duplicate_pooling', randn([K, D, g], { device, seed: childSeed(seed, 3), std }));
    this.duplicatePoolingBias = this.registerParameter('duplicate_pooling_bias', constant([N], 0, device));
  }

  forward(): Tensor {
    throw new Error('MLDecoderBody.forward: internal (MLDecoderHead drives it)');
  }

  backward(): Tensor {
    throw new Error('MLDecoderBody.backward: internal (MLDecoderHead drives it)');
  }

}

/** An ordered list of modules named '0', '1', ... (nn.ModuleList's keys); it runs nothing itself. */
class LayerList extends Module {
  private n = 0;
  add<M extends Module>(m: M): M {
    return this.registerModule(String(this.n++), m);
  }
  forward(): Tensor {
    throw new Error('LayerList.forward: a container only');
  }
  backward(): Tensor {
    throw new Error('LayerList.backward: a container only');
  }
}

/** A module that only holds parameters (e.g. nn.Embedding used as a table). */
class ParamHolder extends Module {
  hold(name: string, value: Tensor, requiresGrad: boolean): Parameter {
    return this.registerParameter(name, value, requiresGrad);
  }
  forward(): Tensor {
    throw new Error('ParamHolder.forward: holds parameters only');
  }
  backward(): Tensor {
    throw new Error('ParamHolder.backward: holds parameters only');
  }
}

export class MLDecoderHead extends Module {
  readonly numClasses: number;
  readonly numGroups: number;
  readonly groupSize: number;
  readonly inDim: number;
  readonly embedDim: number;
  readonly heads: number;
  readonly ffnDim: number;
  readonly dropoutP: number;
  readonly decoder: MLDecoderBody;
  private saved: { x: Tensor; tokens: Tensor; h: Tensor } | null = null;

  constructor(numClasses: number, opts?: MLDecoderHeadOptions) {
    super();
    const op = 'MLDecoderHead';
    this.numClasses = sizeArg(op, 'numClasses', numClasses);
    const { o, device, seed } = moduleOptions(op, opts);
    const int = (name: string, dflt: number) => (o[name] === undefined ? dflt : sizeArg(op, `options.${name}`, o[name]));
    this.inDim = int('inDim', 2048);
    this.embedDim = int('embedDim', 768);
    this.heads = int('heads', 8);
    this.ffnDim = int('ffnDim', 2048);
    if (this.embedDim % this.heads !== 0) {
      throw argError(op, 'options.heads', `a divisor of embedDim ${this.embedDim} (head size D/M)`, this.heads);
    }
    const p = finiteNumber(op, 'options.dropout', o.dropout, 0.1);
    if (!(p >= 0 && p < 1)) throw argError(op, 'options.dropout', 'a probability in [0, 1)', o.dropout);
    this.dropoutP = p;
    this.numGroups = Math.min(int('numGroups', 100), this.numClasses);
    this.groupSize = Math.ceil(this.numClasses / this.numGroups);
    this.decoder = this.registerModule('decoder', new MLDecoderBody(this.numClasses, this.numGroups, this.groupSize, this.inDim,
      this.embedDim, this.heads, this.ffnDim, p, device, seed));
  }

  /** The query table [K,D] repeated over the batch → [B,K,D] (one strided copy, batch stride 0). */
  private broadcastQueries(q0: Tensor, B: number): Tensor {
    const KD = this.numGroups * this.embedDim;
    const out = empty('MLDecoderHead.forward', [B, this.numGroups, this.embedDim], 'float32', q0.device);
    stridedCopy('MLDecoderHead.forward', q0, 'query_embed', out, [B, KD], [0, 1], [KD, 1]);
    return out;
  }

  /** Restarts every dropout stream of the head (reproducible training / finite differences). */
  reseedDropout(seed: number): void {
    this.decoder.layer.reseed(seed);
  }

  /** x [B,H,W,C] or [B,T,C] (C = inDim) → logits [B, numClasses] */
  forward(xIn: Tensor): Tensor {
    const op = `${this.opName}.forward`;
    const x = this.beginForward(xIn);
    if ((x.rank !== 3 && x.rank !== 4) || x.shape[x.rank - 1] !== this.inDim) {
      throw argError(op, 'x', `shape [B, H, W, ${this.inDim}] or [B, T, ${this.inDim}] (channels-last features, C = inDim)`, x);
    }
    const B = x.shape[0];
    const T = x.rank === 4 ? x.shape[1] * x.shape[2] : x.shape[1];
    if (T < 1) throw argError(op, 'x', 'at least one token (H·W >= 1)', x);
    const body = this.decoder;
    return withTemporaries((t) => {
      const tokens = t(x.reshape([B, T, this.inDim]));
      const E = t(body.embedAct.forward(t(body.embed_standart.forward(tokens))));
      // training with dropout: an independent query-noise mask per image (the reference expands
      // the queries over the batch before dropout1); otherwise one shared [1,K,D] query branch
      const q0 = body.queryEmbed.value;
      const perImage = this.training && this.dropoutP > 0;
      const tgt = perImage
        ? t(this.broadcastQueries(q0, B))
        : t(q0.reshape([1, this.numGroups, this.embedDim]));
      const h = t(body.layer.decode(tgt, E));
      const logits = ops.groupFC(h, body.duplicatePooling.value, body.duplicatePoolingBias.value);
      if (this.training) this.saved = { x: this.keep(x), tokens: this.keep(tokens), h: this.keep(h) };
      return logits;
    });
  }

  /** dLogits [B,N] → dx (x's shape); accumulates every trainable parameter's gradient (not the frozen queries). */
  backward(dyIn: Tensor): Tensor {
    const op = `${this.opName}.backward`;
    const c = this.saved;
    const dy = this.beginBackward(dyIn, c !== null);
    expectGradShape(op, dy, [c!.x.shape[0], this.numClasses]);
    const body = this.decoder;
    return withTemporaries((t) => {
      const g = ops.groupFCBackward(c!.h, body.duplicatePooling.value, dy);
      t(g.dX);
      body.duplicatePooling.accumulate(g.dW);
      body.duplicatePoolingBias.accumulate(g.dBias);
      const r = body.layer.decodeBackward(g.dX);
      t(r.dTgt); // the frozen queries get no gradient
      t(r.dMemory);
      const dTokens = t(body.embed_standart.backward(t(body.embedAct.backward(r.dMemory))));
      return dTokens.reshape(c!.x.shape);
    });
  }

  protected override clearCache(): void {
    super.clearCache();
    this.saved = null;
  }
}
