/** `attune doctor`: what Attune runs on here, and why. */
import { existsSync, readFileSync } from 'node:fs';
import { arch, availableParallelism, cpus, platform, release, totalmem, type } from 'node:os';
import { join } from 'node:path';
import { backendInfo, nativeBf16Path } from '../../backend/index.ts';
import { loadNative, nativeBuildHint } from '../../backend/native/load.ts';
import { jsonOption } from '../args.ts';
import { defineCommand } from '../command.ts';
import type { CliIO } from '../io.ts';
import { attuneVersion, projectRoot } from '../project.ts';
import { procCpuFeatures, simdLevel } from '../system-info.ts';

/** Everything `attune doctor` reports (also its --json object). */
export interface DoctorReport {
  attune: string;
  node: string;
  platform: string;
  arch: string;
  os: string;
  cpu: {
    model: string;
    /** Logical cores available to this process. */
    cores: number;
    /** SIMD level: the one the native addon uses, else the widest the CPU supports. */
    simd: string;
    features: string[];
    /** Where `simd` and `features` come from. */
    source: 'native addon' | '/proc/cpuinfo' | 'unavailable';
  };
  memoryGiB: number;
  backend: { active: 'js' | 'native'; reason: string; threads: number } | { error: string };
  native: { loaded: boolean; addon: string; error: string; buildLog: string };
  /**
   * gemmBf16's path: the native one in use (amx, avx512bf16, fallback) when the active backend is
   * native, else 'js'; `available`: the native paths this CPU can run, best first.
   */
  bf16: { path: string; available: string[] };
  /** ATTUNE_* environment variables in effect. */
  env: Record<string, string>;
  /** Problems that stop Attune from working as configured (doctor exits 1 when there are any). */
  problems: string[];
}

/** First line of native/build-log.txt, written by the install script. */
function buildLogFirstLine(): string {
  const path = join(projectRoot, 'native', 'build-log.txt');
  if (!existsSync(path)) return `missing (the native build did not run: ${nativeBuildHint})`;
  return readFileSync(path, 'utf8').split('\n')[0]!.trim() || 'empty';
}

/** Collect the doctor report for this process and environment. */
export function doctorReport(env: Readonly<Record<string, string | undefined>> = process.env): DoctorReport {
  const problems: string[] = [];
  const native = loadNative();
  let backend: DoctorReport['backend'];
  try {
    const info = backendInfo();
    backend = { active: info.active, reason: info.reason, threads: info.threads };
  } catch (err) {
    backend = { error: (err as Error).message };
    problems.push(`backend: ${(err as Error).message}`);
  }
  let cpu: DoctorReport['cpu'];
  const model = cpus()[0]?.model.trim() ?? 'unknown';
  const cores = availableParallelism();
  if (native.cpu) {
    cpu = { model, cores, simd: native.cpu.simd, features: native.cpu.features, source: 'native addon' };
  } else {
    const features = procCpuFeatures();
    cpu = features
      ? { model, cores, simd: simdLevel(features), features, source: '/proc/cpuinfo' }
      : { model, cores, simd: 'unknown', features: [], source: 'unavailable' };
  }
  const bf16Available = native.cpu?.bf16Paths ?? [];
  const bf16Active =
    !('error' in backend) && backend.active === 'native' && native.kernels ? nativeBf16Path() : 'js';
  const forcedBf16 = env.ATTUNE_BF16_PATH;
  if (forcedBf16 && !['amx', 'avx512bf16', 'fallback', 'auto'].includes(forcedBf16)) {
    problems.push(
      `ATTUNE_BF16_PATH must be amx, avx512bf16, fallback or auto, found '${forcedBf16}' (ignored)`,
    );
  }
  const attuneEnv: Record<string, string> = {};
  for (const key of Object.keys(env).sort()) {
    if (key.startsWith('ATTUNE_') && env[key] !== undefined) attuneEnv[key] = env[key]!;
  }
  return {
    attune: attuneVersion(),
    node: process.version,
    platform: platform(),
    arch: arch(),
    os: `${type()} ${release()}`,
    cpu,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    backend,
    native: {
      loaded: native.kernels !== null,
      addon: native.path,
      error: native.error,
      buildLog: buildLogFirstLine(),
    },
    bf16: { path: bf16Active, available: bf16Available },
    env: attuneEnv,
    problems,
  };
}

/** The report as aligned `key: value` lines. */
export function formatDoctorReport(report: DoctorReport): string {
  const { cpu, backend, native } = report;
  const rows: [string, string][] = [
    ['attune', report.attune],
    ['node', `${report.node} (${report.platform}/${report.arch}, ${report.os})`],
    ['cpu', `${cpu.model}, ${cpu.cores} logical cores, ${report.memoryGiB} GiB memory`],
    ['simd', `${cpu.simd} [${cpu.features.join(' ') || 'no features found'}] (from ${cpu.source})`],
    [
      'backend',
      'error' in backend
        ? `ERROR: ${backend.error}`
        : `${backend.active}, ${backend.threads} thread(s): ${backend.reason}`,
    ],
    [
      'native addon',
      native.loaded
        ? `loaded from ${native.addon}`
        : 'error' in backend || !backend.reason.includes(native.error)
          ? `not loaded: ${native.error}`
          : 'not loaded (see backend)',
    ],
    ['native build', native.buildLog],
    [
      'bf16 gemm',
      `${report.bf16.path === 'js' ? 'js reference' : report.bf16.path} (native paths on this CPU: ${report.bf16.available.join(', ') || 'none, addon not loaded'})`,
    ],
    [
      'environment',
      Object.entries(report.env)
        .map(([key, value]) => `${key}=${value}`)
        .join(' ') || 'no ATTUNE_* variables set',
    ],
  ];
  const width = Math.max(...rows.map(([key]) => key.length)) + 2;
  return `${rows.map(([key, value]) => `${`${key}:`.padEnd(width)}${value}`).join('\n')}\n`;
}

const options = { json: jsonOption };

/** `attune doctor [--json]`. */
export const doctorCommand = defineCommand({
  name: 'doctor',
  summary: 'Show the runtime, CPU features and which backend is active, and why',
  description: `Reports Node, the platform, the CPU (model, cores, SIMD features), the active backend
(js or native) with the reason it was chosen, its thread count, the native build's status and the
ATTUNE_* environment variables in effect. Exits 1 when the configured backend cannot run
(e.g. ATTUNE_REQUIRE_NATIVE=1 without a loadable addon).`,
  options,
  examples: ['attune doctor', 'ATTUNE_BACKEND=js attune doctor --json'],
  async run(args, io: CliIO) {
    const report = doctorReport(io.env);
    io.out(formatDoctorReport(report));
    if (args.values.json) io.json(report);
    if (report.problems.length === 0) return 0;
    io.note(`error: ${report.problems.join('; ')}`);
    return 1;
  },
});
