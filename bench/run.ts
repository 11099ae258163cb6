// `npm run bench` — the visattn microbenchmark suite.
//
//   node dist/bench/run.js [--device cpu|cuda] [--threads 1,2] [--quick] [--filter gemm,softmax]
//                          [--out FILE] [--no-torch]
//
// For every device (default: cpu, plus cuda when available) and, on cpu, every thread count (default:
// 1 and all cores), a CHILD process is started with VISATTN_NUM_THREADS set (the cpu thread pool is
// sized once, at process start). The child measures the machine's limits in the same run (an FMA
// throughput probe and a streaming-bandwidth probe), then validates and times every benchmark
// (bench/harness.ts). When a Python with PyTorch is found (VISATTN_TORCH_PYTHON, else python3), the
// same math is timed in PyTorch with the same thread count (bench/torch_baseline.py) and the ratio is
// printed. Results go to bench/results/<machine>.json. Exit code 1 when a benchmark failed (wrong
// result or error); a missing PyTorch is not a failure.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as va from '../lib';
import { packageRoot } from '../lib/native';
import { allBenches, deviceTriadBench, torchSpec } from './cases';
import { applyLimits, BenchDef, BenchResult, FULL, Limits, QUICK, runBench, syncOverheadMs } from './harness';
import { cpuMachineId, cudaMachineId, describeCpu, gpuFp32PeakTflops } from './machine';
import { probeBandwidth, probeFma, ProbeBandwidthResult, ProbeFmaResult } from './probes';

type BenchDevice = 'cpu' | 'cuda';

interface Flags {
  devices: BenchDevice[] | null;
  threads: number[] | null;
  quick: boolean;
  filters: string[];
  out: string | null;
  torch: boolean;
  child: string | null;
  help: boolean;
}

const USAGE = `usage: npm run bench -- [options]
  --device cpu|cuda   device(s) to benchmark, repeatable or comma-separated
                      (default: cpu, plus cuda when a GPU is available; emu is never benchmarked)
  --threads 1,2       cpu thread counts, one child process each (VISATTN_NUM_THREADS);
                      default: VISATTN_NUM_THREADS if set, else 1 and all ${os.cpus().length} logical cpus
  --quick             fewer repetitions and shorter probes (same shapes)
  --filter a,b        only benchmarks whose name contains one of the strings (e.g. gemm, softmax.bwd)
  --out FILE          results file (default: bench/results/<machine>.json; <machine>.partial.json for --quick/--filter/--threads runs)
  --no-torch          skip the PyTorch baseline
environment: VISATTN_TORCH_PYTHON=/path/to/python (a Python with torch for the baseline),
             VISATTN_ISA=avx2|scalar (force a lower cpu instruction set)`;

function parseFlags(argv: string[]): Flags {
  const f: Flags = { devices: null, threads: null, quick: false, filters: [], out: null, torch: true, child: null, help: false };
  const value = (i: number, name: string): string => {
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Error(`bench: ${name} needs a value\n${USAGE}`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const eq = a.indexOf('=');
    const [name, inline] = a.startsWith('--') && eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, undefined];
    const take = (): string => {
      if (inline !== undefined) return inline;
      const v = value(i, name);
      i += 1;
      return v;
    };
    switch (name) {
      case '--device': {
        for (const d of take().split(',').map((s) => s.trim()).filter(Boolean)) {
          if (d === 'emu') throw new Error('bench: the emu device runs CUDA kernels on an emulator for correctness only; it is never benchmarked');
          if (d !== 'cpu' && d !== 'cuda') throw new Error(`bench: --device expected cpu or cuda, received ${JSON.stringify(d)}\n${USAGE}`);
          f.devices = [...(f.devices ?? []), d];
        }
        break;
      }
      case '--threads': {
        const list = take().split(',').map((s) => Number(s.trim()));
        if (list.length === 0 || !list.every((t) => Number.isInteger(t) && t >= 1 && t <= 1024)) {
          throw new Error(`bench: --threads expected a comma-separated list of integers >= 1\n${USAGE}`);
        }
        f.threads = [...new Set(list)];
        break;
      }
      case '--quick':
        f.quick = true;
        break;
      case '--filter':
        f.filters.push(...take().split(',').map((s) => s.trim()).filter(Boolean));
        break;
      case '--out':
        f.out = take();
        break;
      case '--no-torch':
        f.torch = false;
        break;
      case '--child':
        f.child = take();
        break;
      case '--help':
      case '-h':
        f.help = true;
        break;
      default:
        throw new Error(`bench: unknown option ${JSON.stringify(a)}\n${USAGE}`);
    }
  }
  return f;
}

function selectBenches(filters: string[], device: BenchDevice): BenchDef[] {
  const all = allBenches(device);
  if (filters.length === 0) return all;
  return all.filter((b) => filters.some((f) => b.name.toLowerCase().includes(f.toLowerCase())));
}

// ---------------------------------------------------------------- child: one device, one thread count

interface ProbeSet {
  fma?: ProbeFmaResult;
  bandwidth?: ProbeBandwidthResult;
  /** cuda: the ops.add streaming probe */
  deviceAdd?: BenchResult;
  /** cpu: CPU time the probes got / (wall × threads) */
  cpuShare?: number;
}

interface ChildReport {
  device: BenchDevice;
  threads: number | null;
  isa: string | null;
  gpu: string | null;
  probes: { before?: ProbeSet; after?: ProbeSet; error?: string };
  limits: Limits;
  syncOverheadMs: number;
  loadAvg: { before: number[]; after: number[] };
  results: BenchResult[];
}

function fmtRate(r: BenchResult): string {
  return r.rateMedian === null ? '-' : `${r.rateMedian.toFixed(1)} ${r.rateUnit}`;
}
function fmtPct(x: number | null): string {
  return x === null ? '-' : `${(100 * x).toFixed(0)}%`;
}

async function child(flags: Flags): Promise<void> {
  const device = (flags.devices ?? ['cpu'])[0];
  const info = va.info();
  const opts = flags.quick ? QUICK : FULL;
  const threads = device === 'cpu' ? info.cpu.threads : null;
  const isa = device === 'cpu' ? info.cpu.isa : null;
  const gpu = device === 'cuda' ? info.cuda.devices[0]?.name ?? 'unknown GPU' : null;
  const tag = device === 'cpu' ? `[cpu ${threads}t ${isa}]` : `[cuda ${gpu}]`;
  const report: ChildReport = {
    device, threads, isa, gpu, probes: {}, limits: {}, syncOverheadMs: 0,
    loadAvg: { before: os.loadavg(), after: [] }, results: [],
  };

  // The machine's limits are probed before AND after the benchmarks; the larger value is the limit
  // (a transient load on the machine can only lower a probe).
  const probeOnce = async (when: 'before' | 'after'): Promise<void> => {
    if (device === 'cpu') {
      try {
        const t0 = process.hrtime.bigint();
        const c0 = process.cpuUsage();
        const fma = probeFma(threads ?? 1, flags.quick ? 0.3 : 1.0);
        const bw = probeBandwidth(threads ?? 1, (flags.quick ? 128 : 256) * 2 ** 20);
        const c1 = process.cpuUsage(c0);
        const wallUs = Number(process.hrtime.bigint() - t0) / 1e3;
        // CPU time the probes got / (wall × threads): well below 1 means other processes held cores
        const cpuShare = (c1.user + c1.system) / (wallUs * (threads ?? 1));
        report.probes[when] = { fma, bandwidth: bw, cpuShare };
        if (!report.limits.fma || fma.gflops > report.limits.fma.value) {
          report.limits.fma = { value: fma.gflops, source: `FMA probe (${fma.isa}, ${fma.threads} thread(s), best slice, ${when} the benchmarks)` };
        }
        if (!report.limits.bandwidth || bw.gbps > report.limits.bandwidth.value) {
          report.limits.bandwidth = {
            value: bw.gbps,
            source: `triad probe (3 x ${bw.bytesPerArray / 2 ** 20} MB, ${bw.threads} thread(s), best pass, ${when} the benchmarks)`,
          };
        }
        console.log(
          `${tag} probes ${when}: FMA ${fma.gflops.toFixed(1)} GFLOP/s (median ${fma.gflopsMedian.toFixed(1)}), ` +
            `triad ${bw.gbps.toFixed(1)} GB/s (median ${bw.gbpsMedian.toFixed(1)}); cpu share ${fmtPct(cpuShare)}`,
        );
      } catch (e) {
        report.probes.error = e instanceof Error ? e.message : String(e);
        console.log(`${tag} probe failed: ${report.probes.error}`);
      }
    } else {
      const add = await runBench(deviceTriadBench(256 * 2 ** 20), device, opts, { threads: null, isa: null, limits: {} });
      report.probes[when] = { deviceAdd: add };
      if (add.rateBest !== null && (!report.limits.bandwidth || add.rateBest > report.limits.bandwidth.value)) {
        report.limits.bandwidth = { value: add.rateBest, source: `ops.add probe (3 x 256 MB, best call, ${when} the benchmarks)` };
      }
      const peak = gpu ? gpuFp32PeakTflops(gpu) : null;
      if (peak !== null) report.limits.fma = { value: peak * 1000, source: `spec FP32 peak of ${gpu} (no GPU FMA probe yet)` };
      console.log(`${tag} probes ${when}: ops.add ${add.rateBest?.toFixed(0) ?? add.error} GB/s; FP32 peak ${peak ?? 'unknown'} TFLOP/s (spec)`);
    }
  };
  console.log(`${tag} load average ${report.loadAvg.before.map((x) => x.toFixed(2)).join(' ')}`);
  await probeOnce('before');
  report.syncOverheadMs = await syncOverheadMs(device);

  for (const def of selectBenches(flags.filters, device)) {
    const probeNow = device === 'cpu' ? () => probeFma(threads ?? 1, 0.1).gflops : undefined;
    const r = await runBench(def, device, opts, { threads, isa, limits: report.limits, probeNow });
    report.results.push(r);
    if (r.error) {
      console.log(`${tag} ${def.name.padEnd(14)} FAILED: ${r.error}`);
    } else if (r.stats) {
      console.log(
        `${tag} ${def.name.padEnd(14)} ${def.shape.padEnd(10)} median ${r.stats.medianMs.toFixed(3)} ms, min ${r.stats.minMs.toFixed(3)} ms ` +
          `(${r.stats.reps} reps)  ${fmtRate(r)}  ${fmtPct(r.fractionOfLimit)} of the ${r.limit === 'fma' ? 'FMA' : 'bandwidth'} probe so far` +
          `  [validated ${r.validation?.checked} entries, worst ${r.validation?.worst.toFixed(3)} of tolerance]`,
      );
    }
  }
  await probeOnce('after');
  for (const r of report.results) applyLimits(r, report.limits);
  report.loadAvg.after = os.loadavg();
  fs.writeFileSync(flags.child as string, JSON.stringify(report));
}

// ---------------------------------------------------------------- PyTorch baseline

interface TorchPython {
  python: string;
  version: string;
}

function findTorchPython(): TorchPython | null {
  const named = process.env.VISATTN_TORCH_PYTHON;
  const candidates = named ? [named] : ['python3', '/usr/bin/python3', 'python'];
  for (const python of [...new Set(candidates)]) {
    const r = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', timeout: 120_000 });
    if (r.status === 0 && r.stdout.trim()) return { python, version: r.stdout.trim().split('\n').pop() as string };
  }
  return null;
}

interface TorchReport {
  torch: string;
  device: string;
  threads: number | null;
  results: Record<string, { median_ms?: number; min_ms?: number; reps?: number; error?: string }>;
}

function runTorch(tp: TorchPython, device: BenchDevice, threads: number | null, defs: BenchDef[], quick: boolean): TorchReport | { error: string } {
  const script = path.join(packageRoot(), 'bench', 'torch_baseline.py');
  const args = [script, '--device', device, '--spec', JSON.stringify(defs.map(torchSpec))];
  if (threads !== null) args.push('--threads', String(threads));
  if (quick) args.push('--quick');
  const env = { ...process.env };
  if (threads !== null) {
    env.OMP_NUM_THREADS = String(threads);
    env.MKL_NUM_THREADS = String(threads);
    env.OPENBLAS_NUM_THREADS = String(threads);
  }
  const r = spawnSync(tp.python, args, { encoding: 'utf8', env, timeout: 900_000, maxBuffer: 16 * 2 ** 20 });
  if (r.status !== 0) return { error: `torch_baseline.py failed (${r.status ?? r.signal}): ${(r.stderr || '').trim().split('\n').slice(-3).join(' | ')}` };
  try {
    const lines = r.stdout.trim().split('\n');
    return JSON.parse(lines[lines.length - 1]) as TorchReport;
  } catch (e) {
    return { error: `torch_baseline.py printed no JSON: ${String(e)}` };
  }
}

// ---------------------------------------------------------------- parent: orchestration and report

function runChild(device: BenchDevice, threads: number | null, flags: Flags, tmp: string): ChildReport | { error: string } {
  const args = [__filename, '--child', tmp, '--device', device];
  if (flags.quick) args.push('--quick');
  if (flags.filters.length) args.push('--filter', flags.filters.join(','));
  const env = { ...process.env };
  if (threads !== null) env.VISATTN_NUM_THREADS = String(threads);
  if (fs.existsSync(tmp)) fs.unlinkSync(tmp);
  const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'], env });
  if (r.status !== 0 || !fs.existsSync(tmp)) return { error: `benchmark process exited with ${r.status ?? r.signal}` };
  try {
    return JSON.parse(fs.readFileSync(tmp, 'utf8')) as ChildReport;
  } finally {
    fs.unlinkSync(tmp);
  }
}

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

function printTable(runs: ChildReport[]): void {
  const cols: [string, number, boolean][] = [
    ['device', 6, false], ['thr', 3, true], ['benchmark', 14, false], ['shape', 10, false], ['median ms', 10, true],
    ['min ms', 9, true], ['rate (median)', 15, true], ['% limit', 8, true], ['probe now', 9, true], ['cpu share', 9, true], ['torch ms', 9, true],
    ['vs torch', 13, true],
  ];
  const line = (cells: string[]) => console.log(cells.map((c, i) => pad(c, cols[i][1], cols[i][2])).join('  '));
  console.log('');
  line(cols.map((c) => c[0]));
  line(cols.map((c) => '-'.repeat(c[1])));
  for (const run of runs) {
    for (const r of run.results) {
      const t = r.torch && 'ratio' in r.torch ? r.torch : null;
      line([
        r.device, r.threads === null ? '-' : String(r.threads), r.name, r.shape,
        r.stats ? r.stats.medianMs.toFixed(3) : 'FAILED', r.stats ? r.stats.minMs.toFixed(3) : '-',
        fmtRate(r), fmtPct(r.fractionOfLimit), fmtPct(r.probeNowFraction), r.stats?.cpuShare != null ? fmtPct(r.stats.cpuShare) : '-', t ? t.medianMs.toFixed(3) : '-',
        t ? `${t.ratio.toFixed(2)}x ${t.ratio >= 1 ? 'faster' : 'slower'}` : '-',
      ]);
    }
  }
  console.log('');
  console.log('rate: GFLOP/s (gemm, 2·M·N·K per product) or GB/s (compulsory bytes) at the median time; % limit: of the');
  console.log('FMA / triad probe measured in the same process (best of before and after the benchmarks); probe now: a short');
  console.log('FMA probe right before this benchmark, as % of that peak (well below 100%: the machine delivered less then, e.g.');
  console.log('vCPUs sharing a physical core); cpu share: CPU time the process got / (wall × threads) while timing (well below');
  console.log('100%: other processes took cores); vs torch: torch median / visattn median (> 1: visattn faster).');
}

function headline(runs: ChildReport[]): void {
  const rows = runs.flatMap((r) => r.results.filter((x) => x.name === 'gemm.total' && x.stats));
  for (const r of rows) {
    const t = r.torch && 'ratio' in r.torch ? r.torch : null;
    const torchRate = t && r.flops ? r.flops / (t.medianMs * 1e-3) / 1e9 : null;
    console.log(
      `HEADLINE gemm.total ${r.shape} fp32 (fwd + dA + dB) on ${r.device}${r.threads !== null ? ` with ${r.threads} thread(s), ${r.isa}` : ''}: ` +
        `${r.rateMedian?.toFixed(1)} GFLOP/s = ${fmtPct(r.fractionOfLimit)} of the measured FMA peak ${r.limitValue?.toFixed(1) ?? '?'} GFLOP/s (goal >= 60%)` +
        (torchRate !== null ? `; PyTorch ${torchRate.toFixed(1)} GFLOP/s (${t?.ratio.toFixed(2)}x)` : '; no PyTorch baseline') +
        (notRepresentative(r) ? ` — NOT REPRESENTATIVE: ${notRepresentative(r)}` : ''),
    );
  }
  const flagged = runs.flatMap((r) => r.results).filter((r) => notRepresentative(r));
  if (flagged.length > 0) {
    console.log(
      `WARNING: ${flagged.length} result(s) ran while the machine delivered less than its peak ` +
        `(${flagged.map((r) => `${r.name}@${r.threads}t: ${notRepresentative(r)}`).join('; ')}); rerun on an idle machine`,
    );
  }
}

/** Below these fractions a cpu result is flagged as not representative. */
const SHARE_OK = 0.9;
const PROBE_NOW_OK = 0.8;

function notRepresentative(r: BenchResult): string | null {
  const why: string[] = [];
  if (r.stats?.cpuShare != null && r.stats.cpuShare < SHARE_OK) why.push(`cpu share ${fmtPct(r.stats.cpuShare)}`);
  if (r.probeNowFraction !== null && r.probeNowFraction < PROBE_NOW_OK) why.push(`probe now ${fmtPct(r.probeNowFraction)}`);
  return why.length ? why.join(', ') : null;
}

async function parent(flags: Flags): Promise<number> {
  const info = va.info();
  const devices: BenchDevice[] = flags.devices ?? ['cpu', ...(info.cuda.available ? (['cuda'] as BenchDevice[]) : [])];
  if (devices.includes('cuda') && !info.cuda.available) {
    console.error(`bench: cuda requested but not available: ${info.cuda.reason ?? 'unknown reason'}`);
    return 1;
  }
  const cpu = describeCpu();
  // --threads, else a VISATTN_NUM_THREADS set by the user, else 1 and all logical cpus
  const envThreads = Number(process.env.VISATTN_NUM_THREADS);
  const threadList =
    flags.threads ?? (Number.isInteger(envThreads) && envThreads >= 1 ? [envThreads] : [...new Set([1, cpu.logicalCpus])]);
  const root = packageRoot();
  const resultsDir = path.join(root, 'bench', 'results');
  fs.mkdirSync(resultsDir, { recursive: true });
  const load0 = os.loadavg();
  console.log(
    `visattn ${info.version} benchmarks — ${cpu.model}${cpu.microarch ? ` (${cpu.microarch})` : ''}, ${cpu.logicalCpus} logical cpus, ` +
      `cpu isa ${info.cpu.isa}; cuda: ${info.cuda.available ? info.cuda.devices.map((d) => d.name).join(', ') : `unavailable (${info.cuda.reason})`}` +
      `${flags.quick ? '; QUICK run' : ''}`,
  );
  console.log(`load average at start: ${load0.map((x) => x.toFixed(2)).join(' ')}`);
  if (load0[0] > 0.5 * cpu.logicalCpus) console.log('WARNING: the machine is busy; numbers (probes included) may be low and noisy');

  let tp: TorchPython | null = null;
  if (flags.torch) {
    tp = findTorchPython();
    if (!tp) console.log('PyTorch not found (set VISATTN_TORCH_PYTHON): baseline skipped');
    else console.log(`PyTorch ${tp.version} found (${tp.python}): baseline enabled`);
  }

  const runs: ChildReport[] = [];
  let failed = false;
  for (const device of devices) {
    for (const threads of device === 'cpu' ? threadList : [null]) {
      const tmp = path.join(resultsDir, `child-${process.pid}-${device}-${threads ?? 'gpu'}.tmp.json`);
      const rep = runChild(device, threads, flags, tmp);
      if ('error' in rep) {
        console.log(`[${device}${threads !== null ? ` ${threads}t` : ''}] ${rep.error}`);
        failed = true;
        continue;
      }
      if (tp) {
        const okDefs = selectBenches(flags.filters, device).filter((d) => rep.results.some((r) => r.name === d.name && r.stats));
        const tr = okDefs.length ? runTorch(tp, device, threads, okDefs, flags.quick) : null;
        if (tr && 'error' in tr) console.log(`PyTorch baseline failed: ${tr.error}`);
        for (const r of rep.results) {
          if (!tr || 'error' in tr || !r.stats) continue;
          const t = tr.results[r.name];
          if (!t) continue;
          if (t.error !== undefined || t.median_ms === undefined || t.min_ms === undefined) r.torch = { error: t.error ?? 'no result' };
          else r.torch = { medianMs: t.median_ms, minMs: t.min_ms, ratio: t.median_ms / r.stats.medianMs, version: tr.torch };
        }
      }
      if (rep.results.some((r) => r.error)) failed = true;
      runs.push(rep);
    }
  }

  printTable(runs);
  headline(runs);

  const byMachine = new Map<string, ChildReport[]>();
  for (const run of runs) {
    const id = run.device === 'cpu' ? cpuMachineId(cpu) : cudaMachineId(run.gpu ?? 'unknown');
    byMachine.set(id, [...(byMachine.get(id) ?? []), run]);
  }
  for (const [id, list] of byMachine) {
    // A partial run (--quick, --filter or --threads) never overwrites the full results of the machine.
    const partial = flags.quick || flags.filters.length > 0 || flags.threads !== null;
    let file = path.join(resultsDir, partial ? `${id}.partial.json` : `${id}.json`);
    if (flags.out) {
      // one file per machine: with several (cpu and cuda), --out gets the machine id before .json
      file = path.resolve(byMachine.size > 1 ? flags.out.replace(/(\.json)?$/, `.${id}.json`) : flags.out);
    }
    const doc = {
      machine: id,
      date: new Date().toISOString(),
      visattn: info.version,
      node: process.version,
      cpu,
      cuda: list[0].device === 'cuda' ? info.cuda : undefined,
      flags: { quick: flags.quick, filters: flags.filters, threads: threadList },
      torch: tp ? { python: tp.python, version: tp.version } : null,
      loadAvgAtStart: load0,
      notes: [
        'timed call = enqueue through va.ops + await va.synchronize(device); readback excluded; inputs cache-warm',
        'each benchmark validated against float64 references on sampled entries before timing',
        'fractionOfLimit = rate at the median time / limit measured in the same process (probes)',
        'torch.ratio = torch median time / visattn median time (> 1: visattn faster)',
      ],
      runs: list,
    };
    fs.writeFileSync(file, JSON.stringify(doc, null, 1) + '\n');
    console.log(`results written to ${path.relative(process.cwd(), file) || file}`);
  }
  return failed ? 1 : 0;
}

async function main(): Promise<void> {
  let flags: Flags;
  try {
    flags = parseFlags(process.argv.slice(2));
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    process.exitCode = 2;
    return;
  }
  if (flags.help) {
    console.log(USAGE);
    return;
  }
  if (flags.child) {
    await child(flags);
    return;
  }
  process.exitCode = await parent(flags);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack ?? e.message : String(e));
  process.exitCode = 1;
});
