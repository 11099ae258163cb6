// Identifies the machine a benchmark ran on: a sanitized id for the results file name
// (e.g. cpu-amd-epyc-zen4-2t, cuda-nvidia-h100-80gb-hbm3) and a description for the report.
import * as fs from 'fs';
import * as os from 'os';

export function sanitize(s: string): string {
  return s
    .toLowerCase()
    .replace(/\((r|tm)\)/g, '')
    .replace(/\b(processor|cpu|with|radeon graphics|\d+-core)\b/g, ' ')
    .replace(/@.*$/, '')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 48);
}

export interface CpuDescription {
  model: string;
  vendor: string;
  family: number | null;
  modelNumber: number | null;
  microarch: string | null;
  logicalCpus: number;
  flags: string[];
}

function amdMicroarch(family: number, model: number): string | null {
  if (family === 0x17) return model >= 0x30 ? 'zen2' : 'zen';
  if (family === 0x19) {
    const zen4 = (model >= 0x10 && model <= 0x1f) || (model >= 0x60 && model <= 0x7f) || (model >= 0xa0 && model <= 0xaf);
    return zen4 ? 'zen4' : 'zen3';
  }
  if (family === 0x1a) return 'zen5';
  return null;
}

export function describeCpu(): CpuDescription {
  const cpus = os.cpus();
  let vendor = '';
  let family: number | null = null;
  let modelNumber: number | null = null;
  let flags: string[] = [];
  try {
    const text = fs.readFileSync('/proc/cpuinfo', 'utf8');
    const first = text.split(/\n\n/)[0];
    const field = (k: string) => new RegExp(`^${k}\\s*:\\s*(.*)$`, 'm').exec(first)?.[1]?.trim();
    vendor = field('vendor_id') ?? '';
    family = field('cpu family') !== undefined ? Number(field('cpu family')) : null;
    modelNumber = field('model') !== undefined ? Number(field('model')) : null;
    flags = (field('flags') ?? '').split(/\s+/).filter((f) => /^(avx|fma|sse4_2)/.test(f));
  } catch {
    // not Linux: the model name from os.cpus() is all there is
  }
  const microarch = vendor === 'AuthenticAMD' && family !== null && modelNumber !== null ? amdMicroarch(family, modelNumber) : null;
  return {
    model: cpus.length > 0 ? cpus[0].model.trim() : 'unknown cpu',
    vendor,
    family,
    modelNumber,
    microarch,
    logicalCpus: cpus.length,
    flags,
  };
}

/** cpu-<model>[-<microarch>]-<N>t, e.g. cpu-amd-epyc-zen4-2t. */
export function cpuMachineId(d: CpuDescription): string {
  let m = sanitize(d.model) || 'unknown';
  if (d.microarch && !m.includes(d.microarch)) m += `-${d.microarch}`;
  return `cpu-${m}-${d.logicalCpus}t`;
}

/** cuda-<gpu name>, e.g. cuda-nvidia-h100-80gb-hbm3. */
export function cudaMachineId(gpuName: string): string {
  const n = sanitize(gpuName);
  return `cuda-${n.startsWith('nvidia') ? n : `nvidia-${n}`}`;
}

/**
 * FP32 (non-tensor-core) peak of known GPUs, TFLOP/s (shared/spec/performance.md §1), used as the
 * compute limit of cuda benchmarks until a GPU FMA probe exists. Reported with source 'spec'.
 */
export function gpuFp32PeakTflops(name: string): number | null {
  const n = name.toLowerCase();
  if (/h100|h200|gh200/.test(n)) return /pcie/.test(n) ? 51.2 : 66.9;
  if (/a100/.test(n)) return 19.5;
  if (/l40s/.test(n)) return 91.6;
  return null;
}
