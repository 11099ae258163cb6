// Execution model and process lifetime: ops do not block, memory returns to its baseline after many
// create/op/dispose cycles, a child process that awaits results exits by itself, worker threads work.
import { execFile } from 'child_process';
import * as path from 'path';
import { Worker } from 'worker_threads';
import * as va from '../lib';
import { settleGarbage } from './helpers';

const root = path.resolve(__dirname, '..');
const distEntry = path.join(root, 'dist', 'lib', 'index.js');
const devices: va.Device[] = ['cpu', 'emu', ...(va.info().cuda.available ? (['cuda'] as va.Device[]) : [])];

describe.each(devices)('execution model on %s', (device) => {
  test('ops enqueue and return before the device has finished', async () => {
    const n = device === 'emu' ? 128 : 384;
    const reps = device === 'emu' ? 8 : 40;
    await settleGarbage();
    const a = va.randn([n, n], { seed: 1, device });
    await va.synchronize(device);
    expect(va.pendingOps(device)).toBe(0);
    const outs: va.Tensor[] = [];
    for (let i = 0; i < reps; i++) outs.push(va.ops.matmul(a, a));
    // The calls returned; the work is still queued (a native count, not a wall-clock threshold).
    expect(va.pendingOps(device)).toBeGreaterThan(0);
    await va.synchronize(device);
    expect(va.pendingOps(device)).toBe(0);
    for (const t of outs) t.dispose();
    a.dispose();
  });

  test('freeing memory is not counted as a pending operation', async () => {
    // Disposing (or the garbage collector finalizing) a tensor returns its block in stream order; that
    // bookkeeping must not show up in pendingOps(), or a synchronize() could be followed by a non-zero
    // count whenever the collector happens to run in between.
    const n = device === 'emu' ? 128 : 384;
    const reps = device === 'emu' ? 4 : 20;
    const a = va.randn([n, n], { seed: 2, device });
    const scratch = Array.from({ length: 64 }, (_, i) => va.full([256], i, { device }));
    await va.synchronize(device);
    const outs: va.Tensor[] = [];
    for (let i = 0; i < reps; i++) outs.push(va.ops.matmul(a, a));
    for (const t of scratch) t.dispose(); // 64 frees queued behind the matmuls
    expect(va.pendingOps(device)).toBeLessThanOrEqual(reps);
    await va.synchronize(device);
    expect(va.pendingOps(device)).toBe(0);
    for (const t of outs) t.dispose();
    a.dispose();
  });

  test('thousands of create/op/dispose cycles return memory to its baseline', async () => {
    const cycles = device === 'emu' ? 1000 : 3000;
    const warm = va.ops.add(va.ones([64], { device }), va.ones([64], { device }));
    warm.dispose();
    await settleGarbage();
    await va.synchronize(device);
    const before = va.memory()[device];
    for (let i = 0; i < cycles; i++) {
      const x = va.full([1 + (i % 97)], i, { device });
      const y = va.ops.add(x, x);
      const z = y.reshape([-1]);
      x.dispose();
      y.dispose();
      z.dispose();
    }
    va.scope(() => {
      for (let i = 0; i < 200; i++) va.ops.mul(va.ones([16], { device }), va.ones([16], { device }));
    });
    await va.synchronize(device);
    const after = va.memory()[device];
    expect(after.tensors).toBe(before.tensors);
    expect(after.storages).toBe(before.storages);
    expect(after.bytes).toBe(before.bytes);
    expect(after.allocatedBytes).toBe(before.allocatedBytes);
    // the caching allocator reuses blocks instead of growing without bound
    expect(after.reservedBytes - before.reservedBytes).toBeLessThan(1 << 20);
  });

  test('an asynchronous failure surfaces on the next readback or synchronize, then is cleared', async () => {
    if (device === 'cuda') return; // on a real GPU a trapped kernel poisons the context for good
    const a = va.ones([4], { device });
    va.testing.injectFault(device);
    await expect(a.data()).rejects.toThrow(new RegExp(`data: ${device} device error: .*fault`, 'i'));
    expect(Array.from(await a.data())).toEqual([1, 1, 1, 1]);
    va.testing.injectFault(device);
    await expect(va.synchronize(device)).rejects.toThrow(new RegExp(`synchronize: ${device} device error: .*fault`, 'i'));
    await va.synchronize(device);
    va.testing.injectFault(device);
    expect(() => a.dataSync()).toThrow(/fault/i);
    expect(Array.from(a.dataSync())).toEqual([1, 1, 1, 1]);
    a.dispose();
  });

  test('disposing inputs of queued ops is safe', async () => {
    // Slow work first, so that the mul below is still queued when its input is disposed and a new
    // tensor (uploaded from JS) takes the freed block: the upload must not overtake the mul.
    const n = device === 'emu' ? 192 : 1024; // tens of ms of queued work on either device
    const big = va.randn([n, n], { seed: 3, device });
    const slow = [va.ops.matmul(big, big), va.ops.matmul(big, big)];
    const a = va.tensor(new Float32Array(4096).fill(2), [4096], { device });
    const b = va.ops.mul(a, a);
    expect(va.pendingOps(device)).toBeGreaterThan(0);
    a.dispose();
    const c = va.tensor(new Float32Array(4096).fill(7), [4096], { device });
    const d = await b.data();
    expect(d.every((x) => x === 4)).toBe(true);
    expect((await c.data()).every((x) => x === 7)).toBe(true);
    for (const t of [b, c, big, ...slow]) t.dispose();
  });

  test('to() between devices returns at once and is ordered on both streams', async () => {
    const other: va.Device = device === 'cpu' ? 'emu' : 'cpu';
    const n = device === 'emu' ? 192 : 1024; // tens of ms of queued work on either device
    const big = va.randn([n, n], { seed: 5, device });
    const slow = [va.ops.matmul(big, big), va.ops.matmul(big, big)];
    const x = va.tensor([1, 2, 3, 4], [4], { device });
    const y = va.ops.mul(x, x); // still queued behind the matmuls
    const moved = y.to(other); // must not wait for them
    expect(va.pendingOps(device)).toBeGreaterThan(0);
    const z = va.ops.add(moved, moved); // queued on the destination after the copy
    expect(Array.from(await z.data())).toEqual([2, 8, 18, 32]);
    // a source failure surfaces on the destination, once
    va.testing.injectFault(device);
    const w = x.to(other);
    await expect(w.data()).rejects.toThrow(/fault/i);
    const again = x.to(other);
    expect(Array.from(await again.data())).toEqual([1, 2, 3, 4]);
    for (const t of [big, ...slow, x, y, moved, z, w, again]) t.dispose();
    await va.synchronize();
  });

  test('tensors cannot be forged or resized from JS into out-of-bounds native access', () => {
    const t = va.ones([4], { device });
    expect(() => {
      (t as unknown as { size: number }).size = 1 << 26;
    }).toThrow(TypeError);
    expect(t.size).toBe(4);
    const forged = new va.Tensor(t.storage('test', 't'), [1 << 26], 'float32', device);
    const live = va.memory()[device].tensors;
    expect(() => va.ops.relu(forged)).toThrow(/relu|unary.*holds 4 elements but the op reads or writes 67108864/);
    // an op the native layer refuses disposes the output it had allocated (no leak left to the GC)
    expect(va.memory()[device].tensors).toBe(live);
    const square = forged.reshape([1 << 13, 1 << 13]);
    expect(() => va.ops.transpose(square)).toThrow(/transpose: .*holds 4 elements/);
    expect(va.memory()[device].tensors).toBe(live + 1);
    square.dispose();
    forged.dispose();
    t.dispose();
  });
});

describe('process lifetime', () => {
  test('a child process that runs ops and awaits them exits by itself', async () => {
    const { code, stdout, stderr, killed } = await new Promise<{ code: number | null; stdout: string; stderr: string; killed: boolean }>((resolve) => {
      const child = execFile(process.execPath, [path.join(__dirname, 'fixtures', 'child_awaits.js'), distEntry], { timeout: 30000 }, (err, stdout, stderr) => {
        resolve({ code: err ? ((err as NodeJS.ErrnoException & { code?: number }).code as unknown as number) ?? 1 : 0, stdout, stderr, killed: child.killed });
      });
    });
    expect(stderr).toBe('');
    expect(killed).toBe(false);
    expect(code).toBe(0);
    expect(stdout.trim()).toBe('2,4,6,8;2,4,6,8');
  });

  test('tensors dropped without dispose() are counted as leaks and their storage is reclaimed', async () => {
    const out = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--expose-gc', path.join(__dirname, 'fixtures', 'child_leaks.js'), distEntry], { timeout: 30000 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`${err.message}\n${stderr}`));
        else resolve(stdout);
      });
    });
    expect(JSON.parse(out)).toEqual({ leaked: 50, tensors: 0, storages: 0 });
  });

  test('workers that die with readbacks pending neither crash the process nor leak threads', async () => {
    const out = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, [path.join(__dirname, 'fixtures', 'worker_dies.js'), distEntry], { timeout: 60000 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`${err.message}\n${stderr}`));
        else resolve(stdout);
      });
    });
    expect(JSON.parse(out)).toEqual({ alive: true, extraThreads: 0 });
  });

  test('worker threads each get their own devices', async () => {
    const results = await Promise.all(
      ['cpu', 'emu'].map(
        (device) =>
          new Promise<number[]>((resolve, reject) => {
            const w = new Worker(path.join(__dirname, 'fixtures', 'worker_ops.js'), { workerData: { root: distEntry, device } });
            w.once('message', resolve);
            w.once('error', reject);
          }),
      ),
    );
    expect(results).toEqual([
      [1, 4, 9],
      [1, 4, 9],
    ]);
  });
});
