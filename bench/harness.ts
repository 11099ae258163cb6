// Benchmark harness: validate, warm up, time until the device has finished, summarise.
//
// Protocol (shared/spec/performance.md §5, llm.c dev/cuda): every benchmark first runs once and
// checks its result against a float64 reference (bench/reference.ts) — a wrong result throws and the
// benchmark is NOT timed. Then it warms up (≥ 2 calls and ≥ warmupMs), and times ≥ minReps calls
// (more while the time budget lasts, at most maxReps). One timed call = enqueue through the public
// API (va.ops.*) + `await va.synchronize(device)`: the time until the device has finished, readback
// excluded. Outputs are disposed after each call, outside the timed region. Data stay cache-warm
// between calls (inputs are reused), as in BLAS benchmarks.
import * as fs from 'fs';
import * as va from '../lib';
import { CheckReport } from './reference';

export type LimitKind = 'fma' | 'bandwidth';

/** One benchmark, set up on one device with its inputs allocated. */
export interface BenchInstance {
  /** Enqueues one call of the shipped API; returns every tensor it created (disposed by the harness). */
  run(): va.Tensor[];
  /** Runs once, reads back, compares with the float64 reference; throws ValidationError when wrong. */
  validate(): Promise<CheckReport>;
  /** Frees the inputs. */
  dispose(): void;
}

export interface BenchDef {
  /** unique name, e.g. 'gemm.total' (the --filter matches it as a substring) */
  name: string;
  /** the op family: the PyTorch baseline times the same math under the same name */
  family: string;
  /** what is computed, for the table */
  what: string;
  shape: string;
  /** FLOPs per call (GEMM: 2·M·N·K per product) — reported as GFLOP/s against the FMA probe */
  flops?: number;
  /** compulsory bytes per call (each input read once, each output written once) — reported as GB/s */
  bytes?: number;
  /** which measured machine limit the benchmark is compared with */
  limit: LimitKind;
  /** problem dimensions handed to the PyTorch baseline (default: derived from the family) */
  dims?: number[];
  setup(device: va.Device): BenchInstance;
}

export interface TimingOptions {
  warmupMs: number;
  budgetMs: number;
  minReps: number;
  maxReps: number;
}

export const FULL: TimingOptions = { warmupMs: 200, budgetMs: 2000, minReps: 15, maxReps: 200 };
export const QUICK: TimingOptions = { warmupMs: 50, budgetMs: 300, minReps: 5, maxReps: 30 };

export interface Stats {
  reps: number;
  medianMs: number;
  minMs: number;
  p20Ms: number;
  p80Ms: number;
  meanMs: number;
  samplesMs: number[];
  /**
   * cpu device: process CPU time during the timed calls / (their wall time × threads). Near 1 when
   * the benchmark had its threads' cores to itself; well below 1 means other processes took cores
   * (the numbers are then not representative). null on other devices.
   */
  cpuShare: number | null;
  /**
   * Fraction of the machine's CPU time stolen by the hypervisor while timing (/proc/stat "steal";
   * a virtual machine whose vCPUs were given to someone else). null where not available.
   */
  steal: number | null;
}

/** Total and steal jiffies of all cpus (Linux /proc/stat), or null. */
function readSteal(): { total: number; steal: number } | null {
  try {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    if (f.length < 8 || f.some((x) => !Number.isFinite(x))) return null;
    // user nice system idle iowait irq softirq steal [guest guest_nice: already inside user/nice]
    return { total: f.slice(0, 8).reduce((a, b) => a + b, 0), steal: f[7] };
  } catch {
    return null;
  }
}

function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export function summarise(samples: number[]): Stats {
  const s = [...samples].sort((a, b) => a - b);
  return {
    reps: s.length,
    medianMs: quantile(s, 0.5),
    minMs: s[0],
    p20Ms: quantile(s, 0.2),
    p80Ms: quantile(s, 0.8),
    meanMs: s.reduce((a, b) => a + b, 0) / Math.max(1, s.length),
    samplesMs: samples.map((x) => Math.round(x * 1e4) / 1e4),
    cpuShare: null,
    steal: null,
  };
}

// On a GPU every timed call starts with a cold L2 (50 MB on H100/H200): a 256 MB buffer is read and
// rewritten, and the device synchronised, BEFORE the clock starts (as triton's do_bench does).
let flushBuffer: va.Tensor | null = null;
async function flushL2(device: va.Device): Promise<void> {
  if (device !== 'cuda') return;
  if (!flushBuffer) flushBuffer = va.zeros([64 * 2 ** 20], { device });
  va.ops.scale(flushBuffer, 1).dispose();
  await va.synchronize(device);
}

async function once(inst: BenchInstance, device: va.Device): Promise<number> {
  await flushL2(device);
  const t0 = nowMs();
  const outs = inst.run();
  await va.synchronize(device);
  const dt = nowMs() - t0;
  for (const t of outs) t.dispose();
  return dt;
}

/** Times an already validated instance (`threads`: the cpu pool size, for Stats.cpuShare). */
export async function time(inst: BenchInstance, device: va.Device, opts: TimingOptions, threads: number | null = null): Promise<Stats> {
  // warm-up: at least 2 calls and warmupMs
  const w0 = nowMs();
  let warm = 0;
  let warmMs = 0;
  while (warm < 2 || nowMs() - w0 < opts.warmupMs) {
    warmMs += await once(inst, device);
    warm += 1;
    if (warm >= 1000) break;
  }
  const estimate = Math.max(1e-3, warmMs / warm);
  const reps = Math.min(opts.maxReps, Math.max(opts.minReps, Math.ceil(opts.budgetMs / estimate)));
  const samples: number[] = [];
  const cpu0 = process.cpuUsage();
  const st0 = readSteal();
  for (let i = 0; i < reps; i++) samples.push(await once(inst, device));
  const cpu = process.cpuUsage(cpu0);
  const st1 = readSteal();
  const stats = summarise(samples);
  if (st0 && st1 && st1.total > st0.total) stats.steal = (st1.steal - st0.steal) / (st1.total - st0.total);
  if (device === 'cpu' && threads !== null) {
    const wallMs = samples.reduce((a, b) => a + b, 0);
    stats.cpuShare = (cpu.user + cpu.system) / 1e3 / (wallMs * threads);
  }
  return stats;
}

/** The overhead of one `await va.synchronize(device)` with nothing queued (reported, not subtracted). */
export async function syncOverheadMs(device: va.Device, reps = 50): Promise<number> {
  await va.synchronize(device);
  const samples: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = nowMs();
    await va.synchronize(device);
    samples.push(nowMs() - t0);
  }
  return summarise(samples).medianMs;
}

export interface BenchResult {
  name: string;
  family: string;
  what: string;
  shape: string;
  device: va.Device;
  threads: number | null;
  isa: string | null;
  flops: number | null;
  bytes: number | null;
  limit: LimitKind;
  /** limit measured in this run (GFLOP/s for 'fma', GB/s for 'bandwidth'), null when unavailable */
  limitValue: number | null;
  limitSource: string | null;
  validation: CheckReport | null;
  stats: Stats | null;
  /** GFLOP/s or GB/s at the median and at the minimum time */
  rateMedian: number | null;
  rateBest: number | null;
  rateUnit: 'GFLOP/s' | 'GB/s';
  /** rateMedian / limitValue */
  fractionOfLimit: number | null;
  error: string | null;
  /**
   * cpu: a short FMA probe taken right before the timed calls, GFLOP/s, and its fraction of the FMA
   * limit. On a VM whose vCPUs share physical cores at times, this shows what the machine delivered
   * while this benchmark ran (well below 1: the benchmark's numbers are low for that reason).
   */
  probeNowGflops: number | null;
  probeNowFraction: number | null;
  torch?: { medianMs: number; minMs: number; ratio: number; version: string } | { error: string };
}

export type Limits = Partial<Record<LimitKind, { value: number; source: string }>>;

/** Sets limitValue / limitSource / fractionOfLimit of a result from the measured limits. */
export function applyLimits(res: BenchResult, limits: Limits): void {
  const lim = limits[res.limit] ?? null;
  res.limitValue = lim ? lim.value : null;
  res.limitSource = lim ? lim.source : null;
  res.fractionOfLimit = lim && res.rateMedian !== null ? res.rateMedian / lim.value : null;
  const fma = limits.fma;
  res.probeNowFraction = fma && res.probeNowGflops !== null ? res.probeNowGflops / fma.value : null;
}

/** Validates, then times, one benchmark; never throws (a failure is recorded in `error`). */
export async function runBench(
  def: BenchDef, device: va.Device, opts: TimingOptions,
  ctx: { threads: number | null; isa: string | null; limits: Limits; probeNow?: () => number | null },
): Promise<BenchResult> {
  const rateUnit = def.limit === 'fma' ? 'GFLOP/s' : 'GB/s';
  const work = def.limit === 'fma' ? def.flops ?? null : def.bytes ?? null;
  const res: BenchResult = {
    name: def.name, family: def.family, what: def.what, shape: def.shape, device,
    threads: ctx.threads, isa: ctx.isa, flops: def.flops ?? null, bytes: def.bytes ?? null,
    limit: def.limit, limitValue: null, limitSource: null,
    validation: null, stats: null, rateMedian: null, rateBest: null, rateUnit, fractionOfLimit: null, error: null,
    probeNowGflops: null, probeNowFraction: null,
  };
  let inst: BenchInstance | null = null;
  try {
    inst = def.setup(device);
    res.validation = await inst.validate();
    if (ctx.probeNow) res.probeNowGflops = ctx.probeNow();
    res.stats = await time(inst, device, opts, ctx.threads);
    if (work !== null) {
      res.rateMedian = work / (res.stats.medianMs * 1e-3) / 1e9;
      res.rateBest = work / (res.stats.minMs * 1e-3) / 1e9;
    }
    applyLimits(res, ctx.limits);
  } catch (e) {
    res.error = e instanceof Error ? e.message : String(e);
  } finally {
    if (inst) inst.dispose();
  }
  return res;
}
