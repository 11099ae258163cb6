// The tensor layer: creation (inputs copied), dtypes, views, device moves, readback, dispose/scope,
// memory accounting and the errors of the creation functions — on every available device.
import * as va from '../lib';
import { settleGarbage } from './helpers';

const devices: va.Device[] = ['cpu', 'emu', ...(va.info().cuda.available ? (['cuda'] as va.Device[]) : [])];

describe('info', () => {
  test('lists cpu and emu, and says why cuda is unavailable', () => {
    const i = va.info();
    expect(i.devices).toEqual(expect.arrayContaining(['cpu', 'emu']));
    expect(typeof i.version).toBe('string');
    expect(i.cpu.threads).toBeGreaterThanOrEqual(1);
    expect(['avx512', 'avx2', 'scalar']).toContain(i.cpu.isa);
    if (!i.cuda.available) {
      expect(i.devices).not.toContain('cuda');
      expect(typeof i.cuda.reason).toBe('string');
      expect((i.cuda.reason as string).length).toBeGreaterThan(5);
    } else {
      expect(i.cuda.devices.length).toBeGreaterThan(0);
    }
  });
});

describe.each(devices)('tensor on %s', (device) => {
  test('tensor() copies its input and reads back a fresh row-major array', async () => {
    const src = new Float32Array([1, 2, 3, 4, 5, 6]);
    const t = va.tensor(src, [2, 3], { device });
    src[0] = 100;
    expect(t.shape).toEqual([2, 3]);
    expect(t.dtype).toBe('float32');
    expect(t.device).toBe(device);
    expect(t.size).toBe(6);
    const a = await t.data();
    const b = t.dataSync();
    expect(Array.from(a)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(a).not.toBe(b);
    a[1] = -1;
    expect(Array.from(await t.data())).toEqual([1, 2, 3, 4, 5, 6]);
    t.dispose();
  });

  test('int32 tensors and number[] input', async () => {
    const t = va.tensor([1, -2, 2147483647], [3], { device, dtype: 'int32' });
    const d = await t.data();
    expect(d).toBeInstanceOf(Int32Array);
    expect(Array.from(d)).toEqual([1, -2, 2147483647]);
    const u = va.tensor(new Int32Array([7, 8]), [2], { device });
    expect(u.dtype).toBe('int32');
    t.dispose();
    u.dispose();
  });

  test('zeros, ones, full', async () => {
    const z = va.zeros([2, 2], { device });
    const o = va.ones([3], { device });
    const f = va.full([2], -1.5, { device });
    const i = va.ones([2], { device, dtype: 'int32' });
    expect(Array.from(await z.data())).toEqual([0, 0, 0, 0]);
    expect(Array.from(await o.data())).toEqual([1, 1, 1]);
    expect(Array.from(await f.data())).toEqual([-1.5, -1.5]);
    expect(Array.from(await i.data())).toEqual([1, 1]);
    for (const t of [z, o, f, i]) t.dispose();
  });

  test('empty tensors are allowed and read back empty', async () => {
    const t = va.zeros([0, 3], { device });
    expect(t.size).toBe(0);
    expect((await t.data()).length).toBe(0);
    t.dispose();
  });

  test('reshape is a view sharing storage; disposing one view keeps the other valid', async () => {
    await settleGarbage();
    const before = va.memory()[device].storages;
    const t = va.tensor([1, 2, 3, 4, 5, 6], [2, 3], { device });
    const v = t.reshape([3, -1]);
    expect(v.shape).toEqual([3, 2]);
    expect(va.memory()[device].storages).toBe(before + 1);
    t.dispose();
    expect(Array.from(await v.data())).toEqual([1, 2, 3, 4, 5, 6]);
    v.dispose();
    expect(va.memory()[device].storages).toBe(before);
  });

  test('to() moves between devices', async () => {
    const t = va.tensor([1.5, 2.5], [2], { device });
    for (const other of devices) {
      const u = t.to(other);
      expect(u.device).toBe(other);
      expect(Array.from(await u.data())).toEqual([1.5, 2.5]);
      u.dispose();
    }
    t.dispose();
  });

  test('randn and rand: deterministic by seed, identical on every device', async () => {
    const a = va.randn([1000], { seed: 42, device });
    const b = va.randn([1000], { seed: 42, device: 'cpu' });
    const c = va.randn([1000], { seed: 43, device });
    const da = (await a.data()) as Float32Array;
    const db = (await b.data()) as Float32Array;
    const dc = (await c.data()) as Float32Array;
    for (let i = 0; i < da.length; i++) expect(Math.abs(da[i] - db[i])).toBeLessThanOrEqual(device === 'cuda' ? 1e-6 : 0);
    expect(da.some((x, i) => x !== dc[i])).toBe(true);
    const mean = da.reduce((s, x) => s + x, 0) / da.length;
    const variance = da.reduce((s, x) => s + (x - mean) ** 2, 0) / da.length;
    expect(Math.abs(mean)).toBeLessThan(0.15);
    expect(Math.abs(variance - 1)).toBeLessThan(0.15);
    const u = (await va.rand([1000], { seed: 1, device }).data()) as Float32Array;
    expect(u.every((x) => x >= 0 && x < 1)).toBe(true);
    const scaled = await va.randn([4], { seed: 42, mean: 3, std: 2, device }).data();
    for (let i = 0; i < 4; i++) expect(scaled[i]).toBeCloseTo(3 + 2 * da[i], 5);
    for (const t of [a, b, c]) t.dispose();
  });

  test('a disposed tensor is rejected with a clear error', () => {
    const t = va.ones([2], { device });
    t.dispose();
    t.dispose(); // idempotent
    expect(t.disposed).toBe(true);
    expect(() => t.dataSync()).toThrow(/dataSync: argument 'this' expected a live tensor, received a disposed float32 tensor of shape \[2\]/);
    expect(() => t.reshape([2])).toThrow(/reshape: argument 'this' expected a live tensor/);
  });
});

describe('creation errors name the function, the argument, the expectation and the value', () => {
  test('tensor()', () => {
    expect(() => va.tensor([1, 2, 3], [2, 2])).toThrow("tensor: argument 'values' expected 4 values for shape [2, 2], received 3 values");
    expect(() => va.tensor([1, 2], [2, -1])).toThrow(/tensor: argument 'shape' expected an array of non-negative integers, received \[2, -1\]/);
    expect(() => va.tensor('abc' as unknown as number[])).toThrow(/tensor: argument 'values' expected a number\[\] or a typed array, received "abc"/);
    expect(() => va.tensor([1.5], [1], { dtype: 'int32' })).toThrow(/tensor: argument 'values\[0\]' expected an integer in the int32 range, received 1.5/);
    expect(() => va.tensor([2 ** 40], [1], { dtype: 'int32' })).toThrow(/tensor: argument 'values\[0\]' expected an integer in the int32 range, received 1099511627776/);
    expect(() => va.tensor([1], [1], { device: 'tpu' as va.Device })).toThrow(/tensor: argument 'options.device' expected one of 'cpu', 'emu', 'cuda', received "tpu"/);
    expect(() => va.tensor([1], [1], { dtype: 'float64' as va.DType })).toThrow(/tensor: argument 'dtype' expected 'float32' or 'int32', received "float64"/);
  });
  test('zeros/full/randn', () => {
    expect(() => va.zeros([1.5])).toThrow(/zeros: argument 'shape' expected an array of non-negative integers, received \[1.5\]/);
    expect(() => va.full([2], NaN)).toThrow(/full: argument 'value' expected a number \(not NaN\), received NaN/);
    expect(() => va.full([2], 1e40)).toThrow(/full: argument 'value' expected a value representable in float32/);
    expect(() => va.full([2], 2 ** 40, { dtype: 'int32' })).toThrow(/full: argument 'value' expected an integer in the int32 range \(dtype int32\), received 1099511627776/);
    expect(() => va.full([2], 3.5, { dtype: 'int32' })).toThrow(/full: argument 'value' expected an integer in the int32 range/);
    expect(Array.from(va.full([2], -Infinity).dataSync())).toEqual([-Infinity, -Infinity]);
    expect(() => va.pendingOps('gpu' as va.Device)).toThrow(/pendingOps: argument 'device' expected one of 'cpu', 'emu', 'cuda', received "gpu"/);
    expect(() => va.randn([2], { seed: -1 })).toThrow(/randn: argument 'options.seed' expected an integer in \[0, 2\^53\), received -1/);
    expect(() => va.randn([2], { std: Infinity })).toThrow(/randn: argument 'options.std' expected a finite number, received Infinity/);
  });
  test('reshape', () => {
    const t = va.zeros([2, 3]);
    expect(() => t.reshape([4, 2])).toThrow(/reshape: argument 'shape' expected a shape with 6 elements/);
    expect(() => t.reshape([-1, -1])).toThrow(/reshape: argument 'shape' expected at most one -1/);
    t.dispose();
  });
  test('cuda unavailable gives a reason, not a crash', () => {
    if (va.info().cuda.available) return;
    expect(() => va.zeros([2], { device: 'cuda' })).toThrow(/zeros: argument 'options.device' expected an available device, received 'cuda' \(cuda is unavailable: .+\)/);
  });
});

describe('scope and memory', () => {
  test('scope disposes what fn created and did not return', async () => {
    await settleGarbage();
    const before = va.memory().cpu;
    let inner: va.Tensor | undefined;
    const kept = va.scope(() => {
      inner = va.ones([4]);
      const r = va.ones([2]);
      return { r, list: [va.zeros([1])] };
    });
    expect(inner!.disposed).toBe(true);
    expect(kept.r.disposed).toBe(false);
    expect(kept.list[0].disposed).toBe(false);
    kept.r.dispose();
    kept.list[0].dispose();
    const after = va.memory().cpu;
    expect(after.tensors).toBe(before.tensors);
    expect(after.storages).toBe(before.storages);
  });
  test('scope disposes on throw and rejects async functions', () => {
    let t: va.Tensor | undefined;
    expect(() =>
      va.scope(() => {
        t = va.ones([1]);
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(t!.disposed).toBe(true);
    expect(() => va.scope(async () => 1)).toThrow(/scope: argument 'fn' expected a synchronous function/);
  });
});
