// nn.OutlookAttention and nn.Outlooker: gradients, accumulation, devices, state dicts, modes, memory.
//
// How the gradients are verified (a chain of three checks, each with a tolerance it can justify):
//  1. The float64 oracle of the whole layer/block (test/oracle/volo.ts, composed of the op oracles)
//     has its backward checked against CENTRAL FINITE DIFFERENCES IN FLOAT64 for dx and every
//     parameter (h = 1e-6: truncation ~h², rounding ~1e-16/h, both far below the 1e-6 tolerance).
//  2. On every device the module's float32 forward, dx and every parameter gradient are compared
//     with that oracle at the same (float32-exact) inputs and parameters, within the float32
//     accumulation error (relative 2e-4 of the largest magnitude).
//  Together: the module's backward is the derivative of the module's forward to float32 accuracy.
//  3. Belt and braces, independent of the oracle: directional central differences of the module's
//     OWN float32 forward. Entry-wise float32 finite differences would be noise-dominated (the
//     rounding error of L = Σ w·y, ~2^-24·Σ|w·y| per evaluation, divided by a small step swamps small
//     gradient entries). Instead, per group (x, then each parameter alone) one random UNIT direction
//     u: D(ε) = (L(θ+εu) − L(θ−εu))/2ε, Richardson-combined as (4·D(ε/2) − D(ε))/3 with ε = 0.1 to
//     cancel the ε² truncation term, against ⟨∇L, u⟩ from backward. Tolerance: 2e-4 relative plus the
//     rounding floor 3·2^-24·Σ|w·y|/ε of that estimate. Measured: errors <= 1/12 of the tolerance on
//     cpu and emu; a 2% error on the pooled-logits path of dx exceeds it. This check is coarse by
//     nature (one projection per group); check 2 is the entry-wise one.
import * as va from '../lib';
import type { Device, Tensor } from '../lib';
import { expectClose, expectTensor, otherDevice, read, Rng, settleGarbage, testDevices, toTensor } from './helpers';
import { maxAbs } from './oracle/nd';
import { checkAgainstOracle, directionalCheck, disposeDict, gradsOf, oracleGradcheck, toDict } from './modulecheck';
import {
  OutlookerConfig, OutlookLayerConfig, outlookerBackwardRef, outlookerRef, outlookLayerBackwardRef, outlookLayerRef, Params,
} from './oracle/volo';

const { nn } = va;

const OA_NAMES = ['v.weight', 'attn.weight', 'attn.bias', 'proj.weight', 'proj.bias'];
const OA_NAMES_QKV_BIAS = ['v.weight', 'v.bias', 'attn.weight', 'attn.bias', 'proj.weight', 'proj.bias'];
const OUTLOOKER_NAMES = [
  'norm1.weight', 'norm1.bias',
  'attn.v.weight', 'attn.attn.weight', 'attn.attn.bias', 'attn.proj.weight', 'attn.proj.bias',
  'norm2.weight', 'norm2.bias',
  'mlp.fc1.weight', 'mlp.fc1.bias', 'mlp.fc2.weight', 'mlp.fc2.bias',
];

/** Random parameters with timm names and shapes (float32-exact), sized so that logits are O(1). */
function oaParams(rng: Rng, dim: number, heads: number, k: number, qkvBias: boolean, pre = ''): Params {
  const P: Params = {};
  P[`${pre}v.weight`] = rng.arr([dim, dim], { std: 0.4 });
  if (qkvBias) P[`${pre}v.bias`] = rng.arr([dim], { std: 0.2 });
  P[`${pre}attn.weight`] = rng.arr([heads * k ** 4, dim], { std: 0.4 });
  P[`${pre}attn.bias`] = rng.arr([heads * k ** 4], { std: 0.2 });
  P[`${pre}proj.weight`] = rng.arr([dim, dim], { std: 0.4 });
  P[`${pre}proj.bias`] = rng.arr([dim], { std: 0.2 });
  return P;
}

function outlookerParams(rng: Rng, dim: number, heads: number, k: number, hidden: number): Params {
  const around = (shape: number[], c: number) => {
    const a = rng.arr(shape, { std: 0.1 });
    for (let i = 0; i < a.data.length; i++) a.data[i] = Math.fround(a.data[i] + c);
    return a;
  };
  return {
    'norm1.weight': around([dim], 1), 'norm1.bias': around([dim], 0),
    ...oaParams(rng, dim, heads, k, false, 'attn.'),
    'norm2.weight': around([dim], 1), 'norm2.bias': around([dim], 0),
    'mlp.fc1.weight': rng.arr([hidden, dim], { std: 0.35 }), 'mlp.fc1.bias': rng.arr([hidden], { std: 0.1 }),
    'mlp.fc2.weight': rng.arr([dim, hidden], { std: 0.2 }), 'mlp.fc2.bias': rng.arr([dim], { std: 0.1 }),
  };
}


interface LayerCase {
  name: string;
  x: number[];
  dim: number;
  heads: number;
  k: number;
  stride: number;
  qkvBias: boolean;
}

const OA_CASES: LayerCase[] = [
  { name: 'stride 2, odd 5x7, batch 2', x: [2, 5, 7, 8], dim: 8, heads: 2, k: 3, stride: 2, qkvBias: false },
  { name: 'stride 2, 4x4, qkvBias', x: [2, 4, 4, 8], dim: 8, heads: 2, k: 3, stride: 2, qkvBias: true },
  { name: 'stride 1 (pooling is the identity), one head', x: [1, 3, 4, 4], dim: 4, heads: 1, k: 3, stride: 1, qkvBias: false },
  { name: 'k5, stride 2, 5x3', x: [1, 5, 3, 4], dim: 4, heads: 2, k: 5, stride: 2, qkvBias: false },
];

const BLOCK: LayerCase = { name: 'Outlooker dim 8, heads 2, stride 2, 5x7, batch 2', x: [2, 5, 7, 8], dim: 8, heads: 2, k: 3, stride: 2, qkvBias: false };
const RATIO = 3;
const EPS = 1e-5;
const blockConfig = (c: LayerCase): OutlookerConfig => ({ heads: c.heads, kernelSize: c.k, stride: c.stride, eps: EPS });
const layerConfig = (c: LayerCase): OutlookLayerConfig => ({ heads: c.heads, kernelSize: c.k, stride: c.stride });

function makeLayer(c: LayerCase, device: Device, seed = 3) {
  return new nn.OutlookAttention(c.dim, c.heads, { kernelSize: c.k, stride: c.stride, qkvBias: c.qkvBias, device, seed });
}
function makeBlock(c: LayerCase, device: Device, seed = 3) {
  return new nn.Outlooker(c.dim, c.heads, { kernelSize: c.k, stride: c.stride, mlpRatio: RATIO, device, seed });
}

describe('VOLO layer oracles (float64) vs central finite differences', () => {
  // (smaller than the device cases: every entry of x and of every parameter costs two forward passes)
  const ORACLE_CASES: LayerCase[] = [
    { name: 'stride 2, odd 5x3, batch 2, 2 heads', x: [2, 5, 3, 4], dim: 4, heads: 2, k: 3, stride: 2, qkvBias: false },
    { name: 'stride 2, 4x4, qkvBias', x: [1, 4, 4, 4], dim: 4, heads: 1, k: 3, stride: 2, qkvBias: true },
    { name: 'stride 1 (pooling is the identity), one head', x: [1, 3, 4, 4], dim: 4, heads: 1, k: 3, stride: 1, qkvBias: false },
  ];
  it.each(ORACLE_CASES)('OutlookAttention, dx and every parameter: $name', (c) => {
    const rng = new Rng(41);
    const x = rng.arr(c.x);
    const P = oaParams(rng, c.dim, c.heads, c.k, c.qkvBias);
    oracleGradcheck('OutlookAttention oracle', x, P, (a, p) => outlookLayerRef(a, p, layerConfig(c)),
      (a, p, d) => outlookLayerBackwardRef(a, p, d, layerConfig(c)), 256);
  });
  it('Outlooker (dim 8, heads 2, stride 2, 4x4, batch 2), dx and every parameter', () => {
    const c = { ...BLOCK, x: [2, 4, 4, 8] };
    const rng = new Rng(42);
    const x = rng.arr(c.x);
    const P = outlookerParams(rng, c.dim, c.heads, c.k, c.dim * RATIO);
    oracleGradcheck('Outlooker oracle', x, P, (a, p) => outlookerRef(a, p, blockConfig(c)),
      (a, p, d) => outlookerBackwardRef(a, p, d, blockConfig(c)), 256);
  });
});


describe.each(testDevices())('nn.OutlookAttention and nn.Outlooker on %s', (device) => {
  it.each(OA_CASES)('OutlookAttention forward, dx and every parameter gradient vs the oracle: $name', (c) => {
    const rng = new Rng(7);
    const x = rng.arr(c.x);
    const P = oaParams(rng, c.dim, c.heads, c.k, c.qkvBias);
    const d = rng.arr(c.x);
    const cfg = layerConfig(c);
    const r = outlookLayerBackwardRef(x, P, d, cfg);
    const m = makeLayer(c, device);
    checkAgainstOracle('OutlookAttention', m, P, x, d, device, { out: outlookLayerRef(x, P, cfg), ...r });
    m.dispose();
  });

  it('Outlooker forward, dx and every parameter gradient vs the oracle (dim 8, heads 2, stride 2, 5x7, batch 2)', () => {
    const rng = new Rng(8);
    const x = rng.arr(BLOCK.x);
    const P = outlookerParams(rng, BLOCK.dim, BLOCK.heads, BLOCK.k, BLOCK.dim * RATIO);
    const d = rng.arr(BLOCK.x);
    const cfg = blockConfig(BLOCK);
    const m = makeBlock(BLOCK, device);
    checkAgainstOracle('Outlooker', m, P, x, d, device, { out: outlookerRef(x, P, cfg), ...outlookerBackwardRef(x, P, d, cfg) });
    m.dispose();
  });

  it('directional finite difference of the module\'s own float32 forward (OutlookAttention and Outlooker)', () => {
    const rng = new Rng(9);
    const m1 = makeLayer(OA_CASES[0], device, 11);
    directionalCheck('OutlookAttention', m1, rng.arr(OA_CASES[0].x), device, 21);
    m1.dispose();
    const m2 = makeBlock({ ...BLOCK, x: [2, 4, 4, 8] }, device, 12);
    directionalCheck('Outlooker', m2, rng.arr([2, 4, 4, 8]), device, 22);
    m2.dispose();
  });

  it('gradients accumulate: two backward calls double them; zeroGrad resets', () => {
    const m = makeBlock(BLOCK, device);
    const rng = new Rng(10);
    const x = toTensor(rng.arr(BLOCK.x), device);
    const d = toTensor(rng.arr(BLOCK.x), device);
    const y = m.forward(x);
    const dx1 = m.backward(d);
    const g1 = gradsOf(m);
    const dx2 = m.backward(d);
    const g2 = gradsOf(m);
    expect(Array.from(read(dx2))).toEqual(Array.from(read(dx1)));
    expect(Object.keys(g1)).toEqual(OUTLOOKER_NAMES);
    for (const n of OUTLOOKER_NAMES) {
      const a = g1[n]!;
      const b = g2[n]!;
      // g2 = g1 + g1 computed in float32: exactly 2·g1 (deterministic kernels, exact doubling)
      expect({ n, same: b.every((v, i) => v === 2 * a[i]) }).toEqual({ n, same: true });
    }
    m.zeroGrad();
    expect(m.parameters().every((p) => p.grad === null)).toBe(true);
    const dx3 = m.backward(d);
    const g3 = gradsOf(m);
    for (const n of OUTLOOKER_NAMES) expect({ n, same: g3[n]!.every((v, i) => v === g1[n]![i]) }).toEqual({ n, same: true });
    for (const t of [x, d, y, dx1, dx2, dx3]) t.dispose();
    m.dispose();
  });

  it('stateDict names are exactly timm\'s; loadStateDict round-trips (also across devices)', () => {
    const oa = makeLayer(OA_CASES[0], device);
    expect(Object.keys(oa.stateDict())).toEqual(OA_NAMES);
    expect(oa.namedParameters().map(([n, p]) => [n, p.value.shape])).toEqual([
      ['v.weight', [8, 8]], ['attn.weight', [2 * 81, 8]], ['attn.bias', [162]], ['proj.weight', [8, 8]], ['proj.bias', [8]],
    ]);
    const oaBias = makeLayer(OA_CASES[1], device);
    expect(Object.keys(oaBias.stateDict())).toEqual(OA_NAMES_QKV_BIAS);
    const a = makeBlock(BLOCK, device, 1);
    const b = makeBlock(BLOCK, otherDevice(device), 2);
    const sa = a.stateDict();
    expect(Object.keys(sa)).toEqual(OUTLOOKER_NAMES);
    expect(sa['mlp.fc1.weight'].shape).toEqual([24, 8]);
    expect(sa['attn.attn.weight'].shape).toEqual([162, 8]);
    const x = toTensor(new Rng(5).arr(BLOCK.x), device);
    const xb = x.to(otherDevice(device));
    const ya = read(a.forward(x));
    expect(Array.from(read(b.forward(xb)))).not.toEqual(Array.from(ya));
    expect(b.loadStateDict(sa)).toEqual({ missingKeys: [], unexpectedKeys: [] });
    // the loaded values are copies: disposing the dict (or changing a) leaves b intact
    disposeDict(sa);
    a.dispose();
    const yb = read(b.forward(xb));
    const scale = maxAbs(ya);
    ya.forEach((v, i) => expect(Math.abs(v - yb[i])).toBeLessThanOrEqual(2e-5 * scale));
    const sb = b.stateDict();
    for (const [n, t] of Object.entries(sb)) expect(t.device).toBe(otherDevice(device));
    disposeDict(sb);
    x.dispose();
    xb.dispose();
    b.dispose();
    oa.dispose();
    oaBias.dispose();
  });

  it('loadStateDict rejects missing / unexpected keys and shape mismatches (strict) and reports them (non-strict)', () => {
    const m = makeLayer(OA_CASES[0], device);
    const good = m.stateDict();
    const before = read(m.v.weight.value);
    const { 'proj.bias': pb, ...missing } = good;
    expect(() => m.loadStateDict(missing)).toThrow(
      /^OutlookAttention\.loadStateDict: the state dict does not match the module's parameters \(missing keys: proj\.bias\)$/);
    const extra = { ...good, 'v.bias': va.zeros([8], { device }) };
    expect(() => m.loadStateDict(extra)).toThrow(/\(unexpected keys: v\.bias\)$/);
    expect(() => m.loadStateDict({ ...missing, 'q.weight': pb })).toThrow(/\(missing keys: proj\.bias; unexpected keys: q\.weight\)$/);
    const wrong = { ...good, 'attn.weight': va.zeros([81, 8], { device }) };
    expect(() => m.loadStateDict(wrong)).toThrow(
      /^OutlookAttention\.loadStateDict: argument 'dict\['attn\.weight'\]' expected shape \[162, 8\] \(the shape of parameter 'attn\.weight'\), received a float32 tensor of shape \[81, 8\]/);
    expect(() => m.loadStateDict({ ...good, 'v.weight': va.zeros([8, 8], { device, dtype: 'int32' }) })).toThrow(/argument 'dict\['v\.weight'\]' expected dtype float32/);
    expect(() => m.loadStateDict({ ...good, 'v.weight': [1, 2] as unknown as Tensor })).toThrow(/argument 'dict\['v\.weight'\]' expected a float32 Tensor/);
    // nothing was changed by the failed loads
    expect(Array.from(read(m.v.weight.value))).toEqual(Array.from(before));
    const r = m.loadStateDict({ ...missing, 'v.bias': extra['v.bias'] }, { strict: false });
    expect(r).toEqual({ missingKeys: ['proj.bias'], unexpectedKeys: ['v.bias'] });
    expect(() => m.loadStateDict(good, { strict: 'no' } as never)).toThrow(/argument 'options\.strict' expected a boolean/);
    extra['v.bias'].dispose();
    wrong['attn.weight'].dispose();
    disposeDict(good);
    m.dispose();
  });

  it('eval(): same output, no cached activations, backward unavailable; train() restores caching', () => {
    const m = makeBlock(BLOCK, device);
    const x = toTensor(new Rng(6).arr(BLOCK.x), device);
    const yTrain = m.forward(x);
    expect(m.cachedTensors()).toBeGreaterThan(0);
    m.eval();
    expect(m.training).toBe(false);
    expect(m.cachedTensors()).toBe(0);
    expect(m.parameters().length).toBe(13);
    const yEval = m.forward(x);
    expect(m.cachedTensors()).toBe(0);
    expect(Array.from(read(yEval))).toEqual(Array.from(read(yTrain)));
    expect(() => m.backward(yEval)).toThrow(/^Outlooker\.backward: no activations from a training-mode forward/);
    expect(() => m.attn.backward(yEval)).toThrow(/^OutlookAttention\.backward: no activations from a training-mode forward/);
    m.train();
    expect(m.attn.training && m.mlp.fc1.training).toBe(true);
    const y = m.forward(x);
    expect(m.cachedTensors()).toBeGreaterThan(0);
    const dx = m.backward(y);
    expect(dx.shape).toEqual(BLOCK.x);
    for (const t of [x, yTrain, yEval, y, dx]) t.dispose();
    m.dispose();
  });

  it('no leaks: memory is stable across steps and back to the baseline after dispose', async () => {
    await settleGarbage();
    const base = va.memory()[device];
    const m = makeBlock(BLOCK, device);
    const afterInit = va.memory()[device];
    const rng = new Rng(12);
    const x = toTensor(rng.arr(BLOCK.x), device);
    const d = toTensor(rng.arr(BLOCK.x), device);
    const counts: { tensors: number; storages: number; bytes: number }[] = [];
    for (let step = 0; step < 4; step++) {
      const y = m.forward(x);
      const dx = m.backward(d);
      y.dispose();
      dx.dispose();
      const mem = va.memory()[device];
      counts.push({ tensors: mem.tensors, storages: mem.storages, bytes: mem.bytes });
    }
    expect(counts[2]).toEqual(counts[1]);
    expect(counts[3]).toEqual(counts[1]);
    m.zeroGrad();
    m.eval();
    const mem = va.memory()[device];
    // only the parameters and the two inputs remain
    expect({ tensors: mem.tensors, storages: mem.storages, bytes: mem.bytes }).toEqual({
      tensors: afterInit.tensors + 2, storages: afterInit.storages + 2, bytes: afterInit.bytes + 2 * x.byteLength,
    });
    // a forward / backward inside va.scope keeps the module's own tensors alive
    m.train();
    va.scope(() => {
      m.forward(x);
    });
    const dxs = va.scope(() => m.backward(d));
    expect(m.parameters().every((p) => p.grad !== null && !p.grad.disposed)).toBe(true);
    dxs.dispose();
    m.dispose();
    expect(m.parameters().every((p) => p.value.disposed && p.grad === null)).toBe(true);
    expect(() => m.forward(x)).toThrow(/^Outlooker\.forward: the module has been disposed/);
    x.dispose();
    d.dispose();
    const end = va.memory()[device];
    expect({ tensors: end.tensors, storages: end.storages, bytes: end.bytes }).toEqual({
      tensors: base.tensors, storages: base.storages, bytes: base.bytes,
    });
  });

  it('rejects bad configurations and inputs', () => {
    const ctor = (...a: unknown[]) => new (nn.OutlookAttention as unknown as new (...b: unknown[]) => unknown)(...a);
    expect(() => ctor(8, 3, { device })).toThrow(/^OutlookAttention: argument 'heads' expected a divisor of dim 8, received 3/);
    expect(() => ctor(8, 2, { kernelSize: 4, device })).toThrow(/^OutlookAttention: argument 'options.kernelSize' expected an odd positive integer/);
    expect(() => ctor(8, 2, { padding: 0, device })).toThrow(/^OutlookAttention: argument 'options.padding' expected \(kernelSize − 1\)\/2 = 1/);
    expect(() => ctor(8, 2, { stride: 0, device })).toThrow(/^OutlookAttention: argument 'options.stride' expected a positive integer, received 0/);
    expect(() => ctor(0, 1, { device })).toThrow(/^OutlookAttention: argument 'dim' expected a positive integer, received 0/);
    expect(() => ctor(8, 2, { device: 'gpu' })).toThrow(/^OutlookAttention: argument 'options.device' expected one of 'cpu', 'emu', 'cuda'/);
    expect(() => new nn.Outlooker(8, 2, { mlpRatio: 0, device })).toThrow(/^Outlooker: argument 'options.mlpRatio' expected a ratio > 0/);
    const m = makeLayer(OA_CASES[0], device);
    const x = va.zeros([2, 5, 7, 6], { device });
    expect(() => m.forward(x)).toThrow(/^OutlookAttention\.forward: argument 'x' expected shape \[B, H, W, 8\] \(channels-last, C = dim\), received a float32 tensor of shape \[2, 5, 7, 6\]/);
    const xo = va.zeros([2, 5, 7, 8], { device: otherDevice(device) });
    expect(() => m.forward(xo)).toThrow(new RegExp(`^OutlookAttention\\.forward: argument 'x' expected a tensor on ${device} \\(the device of the module's parameters\\), received a float32 tensor of shape \\[2, 5, 7, 8\\] on ${otherDevice(device)}`));
    xo.dispose();
    expect(() => m.backward(x)).toThrow(/^OutlookAttention\.backward: no activations from a training-mode forward/);
    const x8 = va.zeros([2, 5, 7, 8], { device });
    m.forward(x8).dispose();
    expect(() => m.backward(x)).toThrow(/^OutlookAttention\.backward: argument 'dy' expected shape \[2, 5, 7, 8\] \(the shape of the forward output\)/);
    x.dispose();
    x8.dispose();
    m.dispose();
  });
});

describe('nn.Outlooker: every device agrees with cpu on a training step', () => {
  const devices = testDevices();
  const others = devices.filter((d) => d !== 'cpu');
  (devices.includes('cpu') && others.length > 0 ? it : it.skip)(
    `forward, backward, SGD update, second forward (${others.join(', ')} vs cpu)`, () => {
      const rng = new Rng(77);
      const x = rng.arr(BLOCK.x);
      const d = rng.arr(BLOCK.x);
      const run = (device: Device) => {
        const m = makeBlock(BLOCK, device, 2024); // same seed: the same initial parameters on every device
        const init = Object.fromEntries(m.namedParameters().map(([n, p]) => [n, read(p.value)]));
        const tx = toTensor(x, device);
        const td = toTensor(d, device);
        const y1 = m.forward(tx);
        const dx = m.backward(td);
        const grads = gradsOf(m);
        for (const p of m.parameters()) {
          const step = va.ops.scale(p.grad!, 0.1);
          const next = va.ops.sub(p.value, step);
          step.dispose();
          p.value.dispose();
          p.value = next;
        }
        m.zeroGrad();
        const y2 = m.forward(tx);
        const r = { init, y1: read(y1), dx: read(dx), grads, y2: read(y2) };
        for (const t of [tx, td, y1, dx, y2]) t.dispose();
        m.dispose();
        return r;
      };
      const ref = run('cpu');
      const close = (a: Float32Array, b: Float32Array, label: string) => {
        const scale = Math.max(maxAbs(b), 1e-6);
        expectClose(a, b, { atol: 2e-4 * scale, rtol: 2e-4 }, label);
      };
      for (const device of others) {
        const r = run(device);
        for (const n of OUTLOOKER_NAMES) expect({ n, same: Array.from(r.init[n]) }).toEqual({ n, same: Array.from(ref.init[n]) });
        close(r.y1, ref.y1, `forward ${device} vs cpu`);
        close(r.dx, ref.dx, `dx ${device} vs cpu`);
        for (const n of OUTLOOKER_NAMES) close(r.grads[n]!, ref.grads[n]!, `grad ${n} ${device} vs cpu`);
        close(r.y2, ref.y2, `forward after the SGD step ${device} vs cpu`);
      }
    });
});

describe('nn.Linear, nn.LayerNorm, nn.Mlp basics', () => {
  it('Linear init is U(±1/√in), the same on every device for a seed; weight [out, in]', () => {
    const devices = testDevices();
    const ls = devices.map((device) => new nn.Linear(16, 5, { device, seed: 9 }));
    const w0 = read(ls[0].weight.value);
    expect(ls[0].weight.value.shape).toEqual([5, 16]);
    expect(maxAbs(w0)).toBeLessThanOrEqual(0.25);
    expect(maxAbs(w0)).toBeGreaterThan(0.15);
    for (const l of ls.slice(1)) expect(Array.from(read(l.weight.value))).toEqual(Array.from(w0));
    expect(Array.from(read(ls[0].bias!.value))).not.toEqual(Array.from(w0.slice(0, 5)));
    const noBias = new nn.Linear(3, 2, { bias: false });
    expect(noBias.namedParameters().map(([n]) => n)).toEqual(['weight']);
    const ln = new nn.LayerNorm(4);
    expect(Array.from(read(ln.weight.value))).toEqual([1, 1, 1, 1]);
    expect(Array.from(read(ln.bias.value))).toEqual([0, 0, 0, 0]);
    const mlp = new nn.Mlp(4, 12);
    expect(mlp.namedParameters().map(([n, p]) => [n, p.value.shape])).toEqual([
      ['fc1.weight', [12, 4]], ['fc1.bias', [12]], ['fc2.weight', [4, 12]], ['fc2.bias', [4]],
    ]);
    for (const m of [noBias, ln, mlp, ...ls]) m.dispose();
  });

  it('Sequential runs children in order and backward in reverse (same as Mlp with the same weights)', () => {
    for (const device of testDevices()) {
      const mlp = new nn.Mlp(4, 6, { device, seed: 3 });
      const seq = new nn.Sequential(new nn.Linear(4, 6, { device }), new nn.GELU(), new nn.Linear(6, 4, { device }));
      expect(seq.namedParameters().map(([n]) => n)).toEqual(['0.weight', '0.bias', '2.weight', '2.bias']);
      const sd = mlp.stateDict();
      seq.loadStateDict({ '0.weight': sd['fc1.weight'], '0.bias': sd['fc1.bias'], '2.weight': sd['fc2.weight'], '2.bias': sd['fc2.bias'] });
      disposeDict(sd);
      const rng = new Rng(31);
      const x = toTensor(rng.arr([3, 2, 4]), device);
      const dy = toTensor(rng.arr([3, 2, 4]), device);
      const [y1, y2] = [mlp.forward(x), seq.forward(x)];
      const [d1, d2] = [mlp.backward(dy), seq.backward(dy)];
      expect(Array.from(read(y2))).toEqual(Array.from(read(y1)));
      expect(Array.from(read(d2))).toEqual(Array.from(read(d1)));
      expect(Array.from(read(seq.parameters()[0].grad!))).toEqual(Array.from(read(mlp.fc1.weight.grad!)));
      for (const t of [x, dy, y1, y2, d1, d2]) t.dispose();
      mlp.dispose();
      seq.dispose();
    }
  });
});
