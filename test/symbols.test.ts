// One source, two builds, no clashes: the emu translation units must never reference the real CUDA
// runtime (C symbols named cuda*), the nvcc-compiled backend must never reference the emulator, and
// both backends must be present in the one .node.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as va from '../lib';

const build = path.resolve(__dirname, '..', 'build');
const addon = path.join(build, 'Release', 'visattn.node');

function objects(dir: string, pattern: RegExp): string[] {
  if (!fs.existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...objects(p, pattern));
    else if (pattern.test(p)) out.push(p);
  }
  return out;
}

function nm(args: string[]): string[] {
  return execFileSync('nm', args, { encoding: 'utf8', maxBuffer: 1 << 28 }).split('\n');
}

describe('symbols of the built addon', () => {
  test('both backends are in the .node', () => {
    const syms = nm(['-C', '--defined-only', addon]);
    expect(syms.some((l) => l.includes('va_emu::'))).toBe(true);
    expect(syms.some((l) => l.includes('vaemu::'))).toBe(true);
    if (va.info().cuda.compiled) expect(syms.some((l) => l.includes('va_cuda::'))).toBe(true);
  });

  test('emu objects never reference the real CUDA runtime', () => {
    const objs = objects(path.join(build, 'CMakeFiles', 'visattn_emu.dir'), /\.o$/);
    expect(objs.length).toBeGreaterThan(0);
    for (const o of objs) {
      const undef = nm(['-u', o]).map((l) => l.trim().split(/\s+/).pop() ?? '');
      const bad = undef.filter((s) => /^(cuda|cu[A-Z]|__cuda)/.test(s));
      expect({ object: path.basename(o), bad }).toEqual({ object: path.basename(o), bad: [] });
    }
  });

  test('nvcc objects never reference the emulator', () => {
    const objs = objects(path.join(build, 'CMakeFiles'), /\.cu\.o$/);
    if (!va.info().cuda.compiled) {
      expect(objs.length).toBe(0);
      return;
    }
    expect(objs.length).toBeGreaterThan(0);
    for (const o of objs) {
      const bad = nm(['-C', '-u', o]).filter((l) => l.includes('vaemu::') || l.includes('va_emu::'));
      expect({ object: path.basename(o), bad }).toEqual({ object: path.basename(o), bad: [] });
    }
  });
});
