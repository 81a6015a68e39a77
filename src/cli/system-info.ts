/** CPU facts for `attune doctor` when the native addon cannot report them: /proc/cpuinfo flags. */
import { existsSync, readFileSync } from 'node:fs';

/** x86 flags that matter for Attune's kernels, in /proc/cpuinfo spelling. */
const x86Interesting = [
  'sse4_2',
  'avx',
  'f16c',
  'fma',
  'avx2',
  'avx512f',
  'avx512bw',
  'avx512vl',
  'avx512dq',
  'avx512_vnni',
  'avx512_bf16',
  'avx512_fp16',
  'amx_tile',
  'amx_bf16',
];
/** arm64 features (the `Features` line). */
const armInteresting = ['asimd', 'fphp', 'asimdhp', 'asimddp', 'bf16', 'i8mm', 'sve', 'sve2'];

/**
 * The SIMD-relevant features listed in a /proc/cpuinfo text (`flags` on x86, `Features` on arm),
 * in a fixed order, each once.
 */
export function cpuFeaturesFromCpuinfo(cpuinfo: string): string[] {
  const line = /^(flags|Features)\s*:\s*(.*)$/m.exec(cpuinfo);
  if (!line) return [];
  const present = new Set(line[2]!.trim().split(/\s+/));
  const interesting = line[1] === 'flags' ? x86Interesting : armInteresting;
  return interesting.filter((feature) => present.has(feature));
}

/** The widest SIMD level a kernel could use given these features. */
export function simdLevel(features: readonly string[]): string {
  const has = (f: string) => features.includes(f);
  if (has('avx512f')) return 'avx512';
  if (has('avx2') && has('fma')) return 'avx2+fma';
  if (has('asimd')) return 'neon';
  return 'scalar';
}

/** The CPU's SIMD features from /proc/cpuinfo; null where that file does not exist (macOS). */
export function procCpuFeatures(path = '/proc/cpuinfo'): string[] | null {
  if (!existsSync(path)) return null;
  return cpuFeaturesFromCpuinfo(readFileSync(path, 'utf8'));
}
