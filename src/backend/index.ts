/**
 * Backend selection. The native addon is used when it loads, unless ATTUNE_BACKEND=js; f64 data
 * always runs on js (native kernels are f32). An explicit ATTUNE_BACKEND always wins. With
 * ATTUNE_REQUIRE_NATIVE=1 the addon must load whichever backend is selected: a missing addon is an
 * error instead of a fallback (so CI's js pass still proves the addon builds and loads).
 */
import { ConfigError } from '../errors.ts';
import { jsKernels } from './js/index.ts';
import type { Kernels } from './kernels.ts';
import { loadNative, type NativeLoadResult, nativeMapFile } from './native/load.ts';

export { jsKernels } from './js/index.ts';
export type { Kernels } from './kernels.ts';
export { type Bf16PathName, nativeBf16Path, nativeBf16Paths } from './native/load.ts';

export interface BackendInfo {
  /** The backend f32 ops run on. */
  active: 'js' | 'native';
  /** Whether the native addon loaded. */
  nativeLoaded: boolean;
  /** Why this backend is active (human readable). */
  reason: string;
  /** Threads used by the active backend. */
  threads: number;
}

let active: Kernels | null = null;
let info: BackendInfo | null = null;
let warned = false;

/** The environment variables that select a backend. */
export interface BackendEnv {
  ATTUNE_BACKEND?: string | undefined;
  ATTUNE_REQUIRE_NATIVE?: string | undefined;
}

/** What chooseBackend decided; `note` is the one line to print when js is a fallback. */
export interface BackendChoice {
  kernels: Kernels;
  info: BackendInfo;
  note?: string;
}

/**
 * The backend these variables select, given a loader for the addon (called only when needed). An
 * explicit ATTUNE_BACKEND wins; ATTUNE_REQUIRE_NATIVE=1 makes an addon that does not load (missing,
 * failing, or not matching the kernel manifest) an error whichever backend is selected.
 */
export function chooseBackend(env: BackendEnv, load: () => NativeLoadResult): BackendChoice {
  const forced = env.ATTUNE_BACKEND;
  if (forced && forced !== 'js' && forced !== 'native') {
    throw new ConfigError(`ATTUNE_BACKEND must be 'js' or 'native', found '${forced}'`);
  }
  const requireNative = env.ATTUNE_REQUIRE_NATIVE === '1';
  if (forced === 'js') {
    // The addon is only loaded here when it is required, to check that it loads.
    const native = requireNative ? load() : null;
    if (native && !native.kernels) {
      throw new ConfigError(
        `the native addon is required (ATTUNE_REQUIRE_NATIVE=1) but did not load: ${native.error}`,
      );
    }
    return {
      kernels: jsKernels,
      info: {
        active: 'js',
        nativeLoaded: native !== null,
        reason: 'forced by ATTUNE_BACKEND=js',
        threads: 1,
      },
    };
  }
  const native = load();
  if (native.kernels) {
    return {
      kernels: native.kernels,
      info: {
        active: 'native',
        nativeLoaded: true,
        reason: forced === 'native' ? 'forced by ATTUNE_BACKEND=native' : 'native addon loaded',
        threads: native.kernels.threads(),
      },
    };
  }
  if (requireNative || forced === 'native') {
    throw new ConfigError(
      `the native backend is required (${requireNative ? 'ATTUNE_REQUIRE_NATIVE=1' : 'ATTUNE_BACKEND=native'}) but did not load: ${native.error}`,
    );
  }
  return {
    kernels: jsKernels,
    info: {
      active: 'js',
      nativeLoaded: false,
      reason: `native addon unavailable: ${native.error}`,
      threads: 1,
    },
    note: `attune: native backend unavailable (${native.error}); using the slower js backend`,
  };
}

function select(): Kernels {
  const choice = chooseBackend(process.env, loadNative);
  if (choice.note && !warned) {
    warned = true;
    process.stderr.write(`${choice.note}\n`);
  }
  info = choice.info;
  return choice.kernels;
}

/** The active backend for f32/bf16 data. */
export function kernels(): Kernels {
  if (!active) active = select();
  return active;
}

/** Kernels able to run on arrays of this element type (js for f64). */
export function kernelsFor(isF64: boolean): Kernels {
  return isF64 ? jsKernels : kernels();
}

/** Which backend is active and why. */
export function backendInfo(): BackendInfo {
  kernels();
  return info!;
}

/** Force a backend for the rest of the process (tests, benchmarks). */
export function setBackend(name: 'js' | 'native'): void {
  if (name === 'js') {
    active = jsKernels;
    info = {
      active: 'js',
      nativeLoaded: loadNative().kernels !== null,
      reason: 'set by setBackend',
      threads: 1,
    };
    return;
  }
  const native = loadNative();
  if (!native.kernels)
    throw new Error(`setBackend('native'): the native addon did not load: ${native.error}`);
  active = native.kernels;
  info = {
    active: 'native',
    nativeLoaded: true,
    reason: 'set by setBackend',
    threads: native.kernels.threads(),
  };
}

/** The native kernels when the addon loads, else null. */
export function nativeKernels(): Kernels | null {
  return loadNative().kernels;
}

/**
 * A file mapped into memory for zero-copy reading (see `nativeMapFile`: private copy-on-write
 * pages, the file is never modified), or null where files are read instead: the js backend is
 * active (it keeps the plain read path), the addon did not load, the file is empty, or
 * ATTUNE_MMAP=0 is set.
 */
export function mapFileForReading(path: string): ArrayBuffer | null {
  if (process.env.ATTUNE_MMAP === '0' || backendInfo().active !== 'native') return null;
  return nativeMapFile(path);
}
