/**
 * Loads the C++ addon built by scripts/build-native.mjs (native/build/Release/attune_native.node)
 * and exposes it as `Kernels`. The addon's functions take the same positional arguments as the
 * Kernels interface, so the adapter is thin; at load its exports are checked against the kernel
 * manifest (manifest.ts): a missing kernel, one the manifest lacks, or one whose signature differs
 * (a stale build) makes the addon unusable, with an error naming the kernel.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Kernels } from '../kernels.ts';
import { ADDON_EXTRAS, KERNEL_NAMES, signatureOf } from '../manifest.ts';

export interface NativeLoadResult {
  kernels: Kernels | null;
  /** Why it did not load (empty when it did). */
  error: string;
  /** Path of the addon file looked for. */
  path: string;
  /** CPU features and SIMD level reported by the addon. */
  cpu: NativeCpuInfo | null;
}

/** What the addon reports about the CPU (cpuInfo in native/src/binding.cpp). */
export interface NativeCpuInfo {
  simd: string;
  features: string[];
  /** gemmBf16's path when the addon loaded: 'amx' | 'avx512bf16' | 'fallback'. */
  bf16Path: string;
  /** The bf16 paths this CPU can run, best first. */
  bf16Paths: string[];
}

/** A path of gemmBf16 (docs/kernels.md); 'auto' is the best the CPU has. */
export type Bf16PathName = 'auto' | 'amx' | 'avx512bf16' | 'fallback';

let addonBf16Path: ((name?: string) => string) | null = null;
let addonMapFile: ((path: string) => ArrayBuffer | null) | null = null;

const projectRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const addonPath = join(projectRoot, 'native', 'build', 'Release', 'attune_native.node');
const buildLog = join(projectRoot, 'native', 'build-log.txt');

let cached: NativeLoadResult | null = null;

/**
 * How to build the addon: a checkout (src/ present) has its own script; an installed package,
 * whose install script npm may not have run, is rebuilt by npm (-g for a global install).
 */
export const nativeBuildHint = existsSync(join(projectRoot, 'src'))
  ? '`npm run build:native`'
  : '`npm rebuild [-g] attune --foreground-scripts`';

function buildLogSummary(): string {
  if (!existsSync(buildLog)) return `no build log (the install script did not run: try ${nativeBuildHint})`;
  const firstLine = readFileSync(buildLog, 'utf8').split('\n')[0] ?? '';
  return `build ${firstLine}; see ${buildLog}`;
}

/**
 * Why the addon's exports do not match the manifest ('' when they do): every manifest kernel must
 * be a function with the manifest's signature, and nothing else but ADDON_EXTRAS may be exported.
 */
export function manifestMismatch(addon: Record<string, unknown>): string {
  const problems: string[] = [];
  const known = new Set<string>([...KERNEL_NAMES, ...ADDON_EXTRAS]);
  const missing = KERNEL_NAMES.filter((name) => typeof addon[name] !== 'function');
  if (missing.length > 0) problems.push(`lacks kernel(s) ${missing.join(', ')} of src/backend/manifest.ts`);
  const extra = Object.keys(addon).filter((name) => !known.has(name));
  if (extra.length > 0)
    problems.push(`exports kernel(s) ${extra.join(', ')} that src/backend/manifest.ts lacks`);
  const signatures =
    typeof addon.kernelSignatures === 'function'
      ? (addon.kernelSignatures as () => Record<string, string>)()
      : {};
  const stale = KERNEL_NAMES.filter(
    (name) => !missing.includes(name) && signatures[name] !== signatureOf(name),
  );
  if (stale.length > 0) {
    const first = stale[0]!;
    problems.push(
      `was built for other signatures of ${stale.join(', ')} (${first}: addon '${signatures[first] ?? 'none'}', manifest '${signatureOf(first)}'; regenerate native/src/manifest.gen.h and rebuild)`,
    );
  }
  return problems.length > 0 ? `the native addon ${problems.join('; ')}` : '';
}

/** Load the addon once; never throws. */
export function loadNative(): NativeLoadResult {
  if (cached) return cached;
  if (!existsSync(addonPath)) {
    cached = {
      kernels: null,
      error: `${addonPath} not found (${buildLogSummary()})`,
      path: addonPath,
      cpu: null,
    };
    return cached;
  }
  try {
    const require = createRequire(import.meta.url);
    const addon = require(addonPath) as Record<string, unknown> & {
      init(threads: number): void;
      cpuInfo(): NativeCpuInfo;
      bf16Path(name?: string): string;
      mapFile(path: string): ArrayBuffer | null;
    };
    const mismatch = manifestMismatch(addon);
    if (mismatch) {
      cached = { kernels: null, error: `${addonPath}: ${mismatch}`, path: addonPath, cpu: null };
      return cached;
    }
    const requested = Number(process.env.ATTUNE_THREADS ?? 0);
    addon.init(Number.isFinite(requested) && requested > 0 ? Math.floor(requested) : 0);
    const kernels = { ...addon, name: 'native' } as unknown as Kernels;
    addonBf16Path = addon.bf16Path;
    addonMapFile = addon.mapFile;
    cached = { kernels, error: '', path: addonPath, cpu: addon.cpuInfo() };
  } catch (err) {
    cached = {
      kernels: null,
      error: `${addonPath} failed to load: ${(err as Error).message}`,
      path: addonPath,
      cpu: null,
    };
  }
  return cached;
}

/**
 * gemmBf16's active native path, after making `name` the active one when given (tests, benches;
 * ATTUNE_BF16_PATH caps the automatic choice at load). Throws when the addon is not loaded or the
 * CPU lacks the path (the message lists the available ones).
 */
export function nativeBf16Path(name?: Bf16PathName): string {
  const native = loadNative();
  if (!native.kernels || !addonBf16Path) throw new Error(`the native addon is not loaded: ${native.error}`);
  return name === undefined ? addonBf16Path() : addonBf16Path(name);
}

/** The bf16 paths this CPU can run natively, best first (empty when the addon is not loaded). */
export function nativeBf16Paths(): string[] {
  return loadNative().cpu?.bf16Paths ?? [];
}

/**
 * The whole file at `path` mapped into memory by the addon (MAP_PRIVATE: writes through the
 * buffer are private copy-on-write pages, the file is never modified), or null when the addon is
 * not loaded, the platform has no mmap, or the file is empty. The mapping lives as long as the
 * buffer (or a view of it) is reachable. Throws with the OS reason when the file cannot be mapped.
 */
export function nativeMapFile(path: string): ArrayBuffer | null {
  if (!loadNative().kernels || !addonMapFile) return null;
  return addonMapFile(path);
}
