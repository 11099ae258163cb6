// nn.HaloAttention: gradients (oracle checked by finite differences, module vs oracle on every device,
// directional differences of the module's own float32 forward — see test/nn.outlook.test.ts for the
// reasoning behind each check), timm names and init, modes, bad input.
import * as va from '../lib';
import type { Device } from '../lib';
import { expectTensor, otherDevice, read, Rng, testDevices, toTensor } from './helpers';
import { checkAgainstOracle, directionalCheck, oracleGradcheck } from './modulecheck';
import { HaloLayerConfig, haloLayerBackwardRef, haloLayerRef } from './oracle/halonet';
import type { Params } from './oracle/volo';

const { nn } = va;

interface Case {
  name: string;
  x: number[];
  dimOut?: number;
  heads: number;
  qkRatio?: number;
  blockSize: number;
  haloSize: number;
  stride: number;
  qkvBias?: boolean;
  avgDown?: boolean;
  scalePosEmbed?: boolean;
}

/** The layer's head sizes as the module derives them (timm's make_divisible for dqk). */
function config(c: Case): HaloLayerConfig {
  const dimOut = c.dimOut ?? c.x[3];
  const v = dimOut * (c.qkRatio ?? 1);
  let qk = Math.max(8, Math.floor((v + 4) / 8) * 8);
  if (qk < 0.9 * v) qk += 8;
  return {
    heads: c.heads, dimHeadQk: qk / c.heads, dimHeadV: dimOut / c.heads, blockSize: c.blockSize, haloSize: c.haloSize,
    stride: c.stride, avgDown: c.avgDown, scalePosEmbed: c.scalePosEmbed,
  };
}

function params(rng: Rng, c: Case): Params {
  const g = config(c);
  const dim = c.x[3];
  const win = c.blockSize + 2 * c.haloSize;
  const P: Params = { 'q.weight': rng.arr([c.heads * g.dimHeadQk, dim], { std: 0.4 }) };
  if (c.qkvBias) P['q.bias'] = rng.arr([c.heads * g.dimHeadQk], { std: 0.2 });
  P['kv.weight'] = rng.arr([c.heads * (g.dimHeadQk + g.dimHeadV), dim], { std: 0.4 });
  if (c.qkvBias) P['kv.bias'] = rng.arr([c.heads * (g.dimHeadQk + g.dimHeadV)], { std: 0.2 });
  P['pos_embed.height_rel'] = rng.arr([2 * win - 1, g.dimHeadQk], { std: 0.5 });
  P['pos_embed.width_rel'] = rng.arr([2 * win - 1, g.dimHeadQk], { std: 0.5 });
  return P;
}

function make(c: Case, device: Device, seed = 3) {
  return new nn.HaloAttention(c.x[3], {
    dimOut: c.dimOut, heads: c.heads, qkRatio: c.qkRatio, blockSize: c.blockSize, haloSize: c.haloSize, stride: c.stride,
    qkvBias: c.qkvBias, avgDown: c.avgDown, scalePosEmbed: c.scalePosEmbed, device, seed,
  });
}

function outShape(c: Case): number[] {
  const [B, H, W] = c.x;
  const g = config(c);
  const dimOut = g.heads * g.dimHeadV;
  if (c.stride === 1) return [B, H, W, dimOut];
  if (c.avgDown || c.blockSize % 2 !== 0) return [B, Math.floor(H / 2), Math.floor(W / 2), dimOut];
  return [B, H / 2, W / 2, dimOut];
}

const CASES: Case[] = [
  { name: 'stride 1, 8x8, b4 h1, 2 heads, batch 2', x: [2, 8, 8, 8], heads: 2, blockSize: 4, haloSize: 1, stride: 1 },
  { name: 'strided queries (stride 2, even block), qkvBias, non-square 8x12', x: [1, 8, 12, 8], heads: 2, blockSize: 4, haloSize: 2, stride: 2, qkvBias: true },
  { name: 'avg-pool path (stride 2, odd block 3), floor mode on 9x6', x: [1, 9, 6, 8], heads: 2, blockSize: 3, haloSize: 1, stride: 2 },
  { name: 'avgDown with an even block', x: [1, 4, 8, 8], heads: 1, blockSize: 4, haloSize: 1, stride: 2, avgDown: true },
  { name: 'dimOut 16 != dim, qkRatio 0.5, one head, scalePosEmbed', x: [1, 4, 4, 8], dimOut: 16, heads: 1, qkRatio: 0.5, blockSize: 4, haloSize: 2, stride: 1, scalePosEmbed: true },
];

describe('HaloAttention layer oracle (float64) vs central finite differences', () => {
  const ORACLE_CASES: Case[] = [
    { name: 'stride 1, 4x4, b2 h1, 2 heads', x: [1, 4, 4, 8], heads: 2, blockSize: 2, haloSize: 1, stride: 1 },
    { name: 'strided queries, qkvBias, batch 2', x: [2, 4, 4, 8], heads: 1, blockSize: 2, haloSize: 1, stride: 2, qkvBias: true },
    { name: 'avg-pool (odd block 3) on 3x6, scalePosEmbed', x: [1, 3, 6, 8], heads: 2, blockSize: 3, haloSize: 1, stride: 2, scalePosEmbed: true },
  ];
  it.each(ORACLE_CASES)('dx and every parameter: $name', (c) => {
    const rng = new Rng(51);
    const x = rng.arr(c.x);
    const P = params(rng, c);
    oracleGradcheck('HaloAttention oracle', x, P, (a, p) => haloLayerRef(a, p, config(c)),
      (a, p, d) => haloLayerBackwardRef(a, p, d, config(c)), 192);
  });
});

describe.each(testDevices())('nn.HaloAttention on %s', (device) => {
  it.each(CASES)('forward, dx and every parameter gradient vs the oracle: $name', (c) => {
    const rng = new Rng(17);
    const x = rng.arr(c.x);
    const P = params(rng, c);
    const d = rng.arr(outShape(c));
    const cfg = config(c);
    const m = make(c, device);
    checkAgainstOracle('HaloAttention', m, P, x, d, device, { out: haloLayerRef(x, P, cfg), ...haloLayerBackwardRef(x, P, d, cfg) });
    m.dispose();
  });

  it('directional finite differences of the module\'s own float32 forward (strided queries and avg-pool modes)', () => {
    const rng = new Rng(19);
    for (const [i, c] of [CASES[1], CASES[2]].entries()) {
      const m = make(c, device, 31 + i);
      directionalCheck('HaloAttention', m, rng.arr(c.x), device, 41 + i);
      m.dispose();
    }
  });

  it('timm parameter names and shapes; trunc-normal init with timm\'s std', () => {
    const m = new nn.HaloAttention(64, { heads: 4, blockSize: 4, haloSize: 2, device, seed: 5 });
    expect(m.namedParameters().map(([n, p]) => [n, [...p.value.shape]])).toEqual([
      ['q.weight', [64, 64]], ['kv.weight', [128, 64]], ['pos_embed.height_rel', [15, 16]], ['pos_embed.width_rel', [15, 16]],
    ]);
    const stats = (name: string) => {
      const v = read(m.namedParameters().find(([n]) => n === name)![1].value);
      const mean = v.reduce((a, b) => a + b, 0) / v.length;
      const std = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
      return { std, max: Math.max(...v.map(Math.abs)) };
    };
    const w = stats('kv.weight');
    expect(w.std).toBeGreaterThan(0.125 * 0.9);
    expect(w.std).toBeLessThan(0.125 * 1.1);
    const t = stats('pos_embed.height_rel');
    expect(t.std).toBeGreaterThan(0.25 * 0.85);
    expect(t.std).toBeLessThan(0.25 * 1.15);
    expect(t.max).toBeLessThanOrEqual(2);
    const biased = new nn.HaloAttention(8, { heads: 2, qkvBias: true, dimHead: 3, device });
    expect(biased.namedParameters().map(([n, p]) => [n, [...p.value.shape]])).toEqual([
      ['q.weight', [6, 8]], ['q.bias', [6]], ['kv.weight', [14, 8]], ['kv.bias', [14]],
      ['pos_embed.height_rel', [27, 3]], ['pos_embed.width_rel', [27, 3]],
    ]);
    // the same seed gives the same parameters on every device
    const again = new nn.HaloAttention(64, { heads: 4, blockSize: 4, haloSize: 2, device: 'cpu', seed: 5 });
    for (const [n, p] of m.namedParameters()) expect({ n, v: Array.from(read(p.value)) }).toEqual({ n, v: Array.from(read(again.namedParameters().find(([k]) => k === n)![1].value)) });
    for (const mm of [m, biased, again]) mm.dispose();
  });

  it('eval mode keeps no activations; training forward keeps its cache until dispose', () => {
    const c = CASES[1];
    const m = make(c, device);
    const x = toTensor(new Rng(3).arr(c.x), device);
    m.eval();
    const y = m.forward(x);
    expect(m.cachedTensors()).toBe(0);
    m.train();
    const y2 = m.forward(x);
    expectTensor(y2, { data: Float64Array.from(read(y)), shape: [...y.shape] }, 'train vs eval forward', 0);
    expect(m.cachedTensors()).toBeGreaterThan(0);
    m.dispose();
    for (const t of [x, y, y2]) t.dispose();
  });

  it('rejects bad input', () => va.scope(() => {
    expect(() => new nn.HaloAttention(8, { heads: 3, device })).toThrow(/^HaloAttention: argument 'options.heads' expected a divisor of dimOut 8, received 3/);
    expect(() => new nn.HaloAttention(8, { heads: 2, stride: 3, device })).toThrow(/^HaloAttention: argument 'options.stride' expected 1 or 2, received 3/);
    expect(() => new nn.HaloAttention(8, { heads: 2, haloSize: -1, device })).toThrow(/^HaloAttention: argument 'options.haloSize' expected an integer >= 0, received -1/);
    expect(() => new nn.HaloAttention(8, { heads: 2, qkRatio: 0, device })).toThrow(/^HaloAttention: argument 'options.qkRatio' expected a finite number > 0, received 0/);
    const m = new nn.HaloAttention(8, { heads: 2, blockSize: 4, haloSize: 1, device });
    expect(() => m.forward(va.zeros([1, 6, 8, 8], { device }))).toThrow(
      /^HaloAttention.forward: argument 'x' expected a map H×W whose sides are positive multiples of blockSize 4 \(dimensions 1, 2\), received a float32 tensor of shape \[1, 6, 8, 8\]/);
    expect(() => m.forward(va.zeros([1, 8, 8, 4], { device }))).toThrow(/^HaloAttention.forward: argument 'x' expected shape \[B, H, W, 8\]/);
    expect(() => m.forward(va.zeros([1, 8, 8, 8], { device: otherDevice(device) }))).toThrow(/^HaloAttention.forward: argument 'x' expected a tensor on/);
    expect(() => m.backward(va.zeros([1, 8, 8, 8], { device }))).toThrow(/^HaloAttention.backward: no activations from a training-mode forward/);
    const y = m.forward(va.zeros([1, 8, 8, 8], { device }));
    expect(() => m.backward(va.zeros([1, 4, 4, 8], { device }))).toThrow(/^HaloAttention.backward: argument 'dy' expected shape \[1, 8, 8, 8\] \(the shape of the forward output\)/);
    y.dispose();
    m.dispose();
  }));
});
