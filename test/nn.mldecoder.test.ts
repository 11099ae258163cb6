// nn.MLDecoderHead: the float64 head oracle (test/oracle/mldecoder.ts) against central finite
// differences (no dropout, and with fixed dropout masks), the module against that oracle on every
// device (forward, dx, every trainable parameter; the frozen query table gets no gradient),
// directional differences of the module's own float32 forward, names, shapes, modes, bad input.
// See test/nn.outlook.test.ts for the reasoning behind each check and its tolerance.
import * as va from '../lib';
import type { Device, Tensor } from '../lib';
import { expectTensor, otherDevice, read, Rng, testDevices, toTensor } from './helpers';
import { directionalCheck, disposeDict, oracleGradcheck, toDict } from './modulecheck';
import { Arr } from './oracle/nd';
import { HeadConfig, mlDecoderHeadBackwardRef, mlDecoderHeadRef } from './oracle/mldecoder';
import type { Params } from './oracle/volo';

const { nn } = va;

interface Cfg {
  x: number[];
  N: number;
  numGroups: number;
  D: number;
  heads: number;
  F: number;
}

// N = 5 classes in K = 3 groups: g = 2, the last slot is dropped
const SMALL: Cfg = { x: [2, 2, 2, 6], N: 5, numGroups: 3, D: 8, heads: 2, F: 12 };
// COCO-like full decoding (K = N, g = 1), tokens input [B, T, C]
const FULL: Cfg = { x: [2, 5, 6], N: 4, numGroups: 100, D: 8, heads: 4, F: 6 };

const NAMES = [
  'decoder.duplicate_pooling', 'decoder.duplicate_pooling_bias',
  'decoder.layers.0.norm1.weight', 'decoder.layers.0.norm1.bias',
  'decoder.layers.0.multihead_attn.in_proj_weight', 'decoder.layers.0.multihead_attn.in_proj_bias',
  'decoder.layers.0.multihead_attn.out_proj.weight', 'decoder.layers.0.multihead_attn.out_proj.bias',
  'decoder.layers.0.linear1.weight', 'decoder.layers.0.linear1.bias',
  'decoder.layers.0.linear2.weight', 'decoder.layers.0.linear2.bias',
  'decoder.layers.0.norm2.weight', 'decoder.layers.0.norm2.bias',
  'decoder.layers.0.norm3.weight', 'decoder.layers.0.norm3.bias',
  'decoder.embed_standart.weight', 'decoder.embed_standart.bias',
  'decoder.query_embed.weight',
];
const QUERY = 'decoder.query_embed.weight';

function groups(c: Cfg) {
  const K = Math.min(c.numGroups, c.N);
  return { K, g: Math.ceil(c.N / K) };
}

/** Random parameters (float32-exact) with the checkpoint's names, sized so that activations are O(1). */
function params(rng: Rng, c: Cfg): Params {
  const { K, g } = groups(c);
  const Din = c.x[c.x.length - 1];
  const { D, F } = c;
  const L = 'decoder.layers.0.';
  const around = (shape: number[], v: number) => {
    const a = rng.arr(shape, { std: 0.1 });
    for (let i = 0; i < a.data.length; i++) a.data[i] = Math.fround(a.data[i] + v);
    return a;
  };
  return {
    'decoder.duplicate_pooling': rng.arr([K, D, g], { std: 0.4 }),
    'decoder.duplicate_pooling_bias': rng.arr([c.N], { std: 0.2 }),
    [`${L}norm1.weight`]: around([D], 1), [`${L}norm1.bias`]: around([D], 0),
    [`${L}multihead_attn.in_proj_weight`]: rng.arr([3 * D, D], { std: 0.4 }),
    [`${L}multihead_attn.in_proj_bias`]: rng.arr([3 * D], { std: 0.2 }),
    [`${L}multihead_attn.out_proj.weight`]: rng.arr([D, D], { std: 0.4 }),
    [`${L}multihead_attn.out_proj.bias`]: rng.arr([D], { std: 0.2 }),
    [`${L}linear1.weight`]: rng.arr([F, D], { std: 0.4 }), [`${L}linear1.bias`]: rng.arr([F], { std: 0.2 }),
    [`${L}linear2.weight`]: rng.arr([D, F], { std: 0.3 }), [`${L}linear2.bias`]: rng.arr([D], { std: 0.2 }),
    [`${L}norm2.weight`]: around([D], 1), [`${L}norm2.bias`]: around([D], 0),
    [`${L}norm3.weight`]: around([D], 1), [`${L}norm3.bias`]: around([D], 0),
    'decoder.embed_standart.weight': rng.arr([D, Din], { std: 0.4 }),
    'decoder.embed_standart.bias': rng.arr([D], { std: 0.3 }),
    [QUERY]: rng.arr([K, D]),
  };
}

function make(c: Cfg, device: Device, dropout: number, seed = 3) {
  return new nn.MLDecoderHead(c.N, {
    inDim: c.x[c.x.length - 1], numGroups: c.numGroups, embedDim: c.D, heads: c.heads, ffnDim: c.F, dropout, device, seed,
  });
}

/** The masks the module's next training forward uses after reseedDropout(seed). */
function masksOf(m: InstanceType<typeof nn.MLDecoderHead>, seed: number): HeadConfig['masks'] {
  m.reseedDropout(seed);
  const l = m.decoder.layer;
  return {
    drop1: l.dropout1.nextMask(), drop2: l.dropout2.nextMask(), drop: l.dropout.nextMask(), drop3: l.dropout3.nextMask(),
    attnSeed: l.multihead_attn.nextSeed(),
  };
}

const withoutQuery = (P: Params): Params => Object.fromEntries(Object.entries(P).filter(([n]) => n !== QUERY));

describe('ML-Decoder head oracle (float64) vs central finite differences', () => {
  const cases: [string, number][] = [['no dropout (eval semantics, shared queries)', 0], ['dropout 0.3 with fixed masks', 0.3]];
  it.each(cases)('dx and every trainable parameter: %s', (_, p) => {
    const rng = new Rng(61);
    const x = rng.arr(SMALL.x);
    const P = params(rng, SMALL);
    const m = make(SMALL, 'cpu', p);
    const cfg: HeadConfig = { heads: SMALL.heads, p, masks: p > 0 ? masksOf(m, 77) : undefined };
    m.dispose();
    const query = P[QUERY];
    oracleGradcheck('MLDecoderHead oracle', x, withoutQuery(P), (a, q) => mlDecoderHeadRef(a, { ...q, [QUERY]: query }, cfg),
      (a, q, d) => mlDecoderHeadBackwardRef(a, { ...q, [QUERY]: query }, d, cfg), 160);
  });
});

/** Loads P, runs a training forward + backward, compares with the oracle. */
function checkHead(label: string, m: InstanceType<typeof nn.MLDecoderHead>, P: Params, x: Arr, d: Arr, device: Device, cfg: HeadConfig): void {
  const dict = toDict(P, device);
  m.loadStateDict(dict);
  disposeDict(dict);
  if (cfg.p > 0) m.reseedDropout(77);
  const tx = toTensor(x, device);
  const td = toTensor(d, device);
  const y = m.forward(tx);
  expectTensor(y, mlDecoderHeadRef(x, P, cfg), `${label} forward ${device}`);
  const dx = m.backward(td);
  const r = mlDecoderHeadBackwardRef(x, P, d, cfg);
  expectTensor(dx, r.dX, `${label} dx ${device}`);
  for (const [n, p] of m.namedParameters()) {
    if (n === QUERY) {
      expect({ n, grad: p.grad, requiresGrad: p.requiresGrad }).toEqual({ n, grad: null, requiresGrad: false });
      continue;
    }
    expect(p.grad).not.toBeNull();
    expectTensor(p.grad!, r.grads[n], `${label} grad ${n} ${device}`);
  }
  for (const t of [tx, td, y, dx]) t.dispose();
}

describe.each(testDevices())('nn.MLDecoderHead on %s', (device) => {
  it('forward, dx and every trainable gradient vs the oracle: no dropout, [B,H,W,C] input, dropped slot', () => {
    const rng = new Rng(62);
    const x = rng.arr(SMALL.x);
    const P = params(rng, SMALL);
    const m = make(SMALL, device, 0);
    checkHead('MLDecoderHead', m, P, x, rng.arr([SMALL.x[0], SMALL.N]), device, { heads: SMALL.heads, p: 0 });
    m.dispose();
  });

  it('forward, dx and every trainable gradient vs the oracle: dropout 0.3 with a fixed seed', () => {
    const rng = new Rng(63);
    const x = rng.arr(SMALL.x);
    const P = params(rng, SMALL);
    const m = make(SMALL, device, 0.3);
    const cfg: HeadConfig = { heads: SMALL.heads, p: 0.3, masks: masksOf(m, 77) };
    checkHead('MLDecoderHead dropout', m, P, x, rng.arr([SMALL.x[0], SMALL.N]), device, cfg);
    m.dispose();
  });

  it('full decoding (K = N, g = 1) on tokens [B, T, C]; eval mode = the no-dropout oracle and keeps nothing', () => {
    const rng = new Rng(64);
    const x = rng.arr(FULL.x);
    const P = params(rng, FULL);
    const m = make(FULL, device, 0.1);
    const plain = make(FULL, device, 0);
    checkHead('MLDecoderHead full', plain, P, x, rng.arr([FULL.x[0], FULL.N]), device, { heads: FULL.heads, p: 0 });
    plain.dispose();
    const dict = toDict(P, device);
    m.loadStateDict(dict);
    disposeDict(dict);
    m.eval();
    const tx = toTensor(x, device);
    const y = m.forward(tx);
    expectTensor(y, mlDecoderHeadRef(x, P, { heads: FULL.heads, p: 0 }), `MLDecoderHead eval ${device}`);
    expect(m.cachedTensors()).toBe(0);
    // the same features as [B, H, W, C] give the same logits
    const x4 = tx.reshape([2, 5, 1, 6]);
    const y4 = m.forward(x4);
    expect(Array.from(read(y4))).toEqual(Array.from(read(y)));
    for (const t of [tx, y, x4, y4]) t.dispose();
    m.dispose();
  });

  it('directional finite differences of the module\'s own float32 forward', () => {
    // The head has ReLUs (embedding, FFN): steps of 0.1 and 0.03 move a pre-activation across its kink,
    // where differences are not derivatives; at 0.02 none crosses and the rounding floor (∝ 1/ε) still
    // leaves room: measured worst error 0.81 of the tolerance on cpu and emu (0.99 at ε = 0.01).
    const m = make(SMALL, device, 0, 11);
    directionalCheck('MLDecoderHead', m, new Rng(65).arr(SMALL.x), device, 66, 0.02);
    m.dispose();
  });

  it('checkpoint names and shapes, frozen queries, true-ceiling group size, dropout masks differ per call', () => {
    const m = make(SMALL, device, 0.1, 5);
    expect(m.namedParameters().map(([n]) => n)).toEqual(NAMES);
    const shapes = Object.fromEntries(m.namedParameters().map(([n, p]) => [n, [...p.value.shape]]));
    expect(shapes['decoder.duplicate_pooling']).toEqual([3, 8, 2]);
    expect(shapes['decoder.duplicate_pooling_bias']).toEqual([5]);
    expect(shapes['decoder.layers.0.multihead_attn.in_proj_weight']).toEqual([24, 8]);
    expect(shapes[QUERY]).toEqual([3, 8]);
    expect(m.namedParameters().filter(([, p]) => !p.requiresGrad).map(([n]) => n)).toEqual([QUERY]);
    // g = ⌈N/K⌉ even where the reference's int(N/K + 0.999) is not a ceiling
    const big = new nn.MLDecoderHead(20001, { inDim: 4, numGroups: 10000, embedDim: 4, heads: 1, ffnDim: 4, device });
    expect([big.numGroups, big.groupSize]).toEqual([10000, 3]);
    big.dispose();
    // training forwards draw fresh masks; reseedDropout replays them
    const x = toTensor(new Rng(67).arr(SMALL.x), device);
    const forwardRead = (): Float32Array => {
      const y = m.forward(x);
      const v = read(y);
      y.dispose();
      return v;
    };
    const a = forwardRead();
    const b = forwardRead();
    expect(Array.from(a)).not.toEqual(Array.from(b));
    m.reseedDropout(9);
    const c = forwardRead();
    m.reseedDropout(9);
    const d = forwardRead();
    expect(Array.from(c)).toEqual(Array.from(d));
    x.dispose();
    m.dispose();
  });

  it('rejects bad input', () => va.scope(() => {
    expect(() => new nn.MLDecoderHead(10, { embedDim: 10, heads: 3, device })).toThrow(
      /^MLDecoderHead: argument 'options.heads' expected a divisor of embedDim 10 \(head size D\/M\), received 3/);
    expect(() => new nn.MLDecoderHead(10, { dropout: 1, device })).toThrow(/^MLDecoderHead: argument 'options.dropout' expected a probability in \[0, 1\), received 1/);
    expect(() => new nn.MLDecoderHead(0, { device })).toThrow(/^MLDecoderHead: argument 'numClasses' expected a positive integer, received 0/);
    const m = make(SMALL, device, 0);
    expect(() => m.forward(va.zeros([2, 4, 5], { device }))).toThrow(
      /^MLDecoderHead.forward: argument 'x' expected shape \[B, H, W, 6\] or \[B, T, 6\] \(channels-last features, C = inDim\), received a float32 tensor of shape \[2, 4, 5\]/);
    expect(() => m.forward(va.zeros([2, 4, 6], { device: otherDevice(device) }))).toThrow(/^MLDecoderHead.forward: argument 'x' expected a tensor on/);
    expect(() => m.backward(va.zeros([2, 5], { device }))).toThrow(/^MLDecoderHead.backward: no activations from a training-mode forward/);
    const y: Tensor = m.forward(va.zeros([2, 4, 6], { device }));
    expect(() => m.backward(va.zeros([2, 4], { device }))).toThrow(/^MLDecoderHead.backward: argument 'dy' expected shape \[2, 5\] \(the shape of the forward output\)/);
    y.dispose();
    m.dispose();
  }));
});
