/**
 * Loads the C++ addon built by scripts/build-native.mjs (native/build/Release/attune_native.node)
 * and exposes it as `Kernels`. The addon's functions take the same positional arguments as the
 * Kernels interface, so the adapter is thin.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Kernels } from '../kernels.ts';

export interface NativeLoadResult {
  kernels: Kernels | null;
  /** Why it did not load (empty when it did). */
  error: string;
  /** Path of the addon file looked for. */
  path: string;
  /** CPU features and SIMD level reported by the addon. */
  cpu: { simd: string; features: string[] } | null;
}

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
      cpuInfo(): { simd: string; features: string[] };
    };
    const requested = Number(process.env.ATTUNE_THREADS ?? 0);
    addon.init(Number.isFinite(requested) && requested > 0 ? Math.floor(requested) : 0);
    const kernels = { ...addon, name: 'native' } as unknown as Kernels;
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
