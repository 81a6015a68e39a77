/**
 * Shared by the `attune bench ...` commands: choosing backends, loading the benchmark harness
 * (src/bench/, imported lazily so the rest of the CLI works without it) and printing its envelope.
 */
import { loadNative } from '../backend/native/load.ts';
import type { BenchEnvelope } from '../bench/envelope.ts';
import type { OptionSpec } from './args.ts';
import { UnavailableError } from './errors.ts';
import type { CliIO } from './io.ts';
import { formatTable } from './table.ts';

export type BenchBackend = 'js' | 'native';

/** Options shared by every bench command. */
export const benchOptions = {
  backend: {
    type: 'choice',
    choices: ['js', 'native', 'both'],
    default: 'both',
    description: 'Backends to time; `both` skips native (with a note) when the addon is not loaded',
  },
  threads: {
    type: 'integer',
    min: 1,
    defaultText: 'ATTUNE_THREADS, else all cores',
    description: 'Threads for the native kernels',
  },
  seconds: {
    type: 'number',
    min: 0,
    exclusiveMin: true,
    valueName: '<s>',
    defaultText: "the harness's",
    description: 'Time spent measuring each case, in seconds',
  },
} as const satisfies Record<string, OptionSpec>;

/** What every bench command's help says about output: it writes no user artifacts. */
export const BENCH_OUTPUT_NOTE = `Output: a bench manages its own output. Results go to stdout (with --json, the envelope);
temporary files are removed; nothing of yours is written or replaced, so there is no --overwrite.`;

/** Settings common to the bench harness functions. */
export interface BenchSettings {
  backends: BenchBackend[];
  threads?: number;
  seconds?: number;
}

/** The shared bench flags, as parsed by the option spec. */
export interface BenchFlags {
  backend: BenchBackend | 'both';
  threads?: number | undefined;
  seconds?: number | undefined;
}

/**
 * Harness settings from validated flags. `nativeError` is why the addon did not load (null when
 * it did): `--backend native` then fails, `both` falls back to js with a note on stderr.
 */
export function benchSettings(flags: BenchFlags, nativeError: string | null, io: CliIO): BenchSettings {
  const { backend } = flags;
  const rest = {
    ...(flags.threads !== undefined ? { threads: flags.threads } : {}),
    ...(flags.seconds !== undefined ? { seconds: flags.seconds } : {}),
  };
  if (nativeError === null || backend === 'js') {
    return { backends: backend === 'both' ? ['js', 'native'] : [backend], ...rest };
  }
  if (backend === 'native') {
    throw new UnavailableError(`--backend native: the native addon is not loaded (${nativeError})`);
  }
  io.note(`bench: timing js only; the native addon is not loaded (${nativeError})`);
  return { backends: ['js'], ...rest };
}

/** Why the native addon did not load, or null when it did. */
export function nativeLoadError(): string | null {
  const native = loadNative();
  return native.kernels ? null : native.error;
}

/**
 * Import `exportName` from src/bench/<file>. A harness that is not there (or lacks the export) is
 * an UnavailableError naming the file, not a stack trace.
 */
export async function importBench<T>(file: string, exportName: string): Promise<T> {
  // compiled to dist/, the harness is the .js file tsc wrote for it
  const name = import.meta.url.endsWith('.js') ? file.replace(/\.ts$/, '.js') : file;
  const url = new URL(`../bench/${name}`, import.meta.url);
  let module: Record<string, unknown>;
  try {
    module = (await import(url.href)) as Record<string, unknown>;
  } catch (err) {
    const code = (err as { code?: string }).code;
    const message = (err as Error).message ?? '';
    if (code === 'ERR_MODULE_NOT_FOUND' && message.includes(`bench/${name}`)) {
      throw new UnavailableError(`this checkout has no benchmark harness src/bench/${file} yet`);
    }
    throw err;
  }
  const fn = module[exportName];
  if (typeof fn !== 'function')
    throw new UnavailableError(`src/bench/${file} does not export ${exportName}()`);
  return fn as T;
}

/** A bench envelope as a heading line and a table of its results. */
export function formatBenchEnvelope(envelope: BenchEnvelope): string {
  const heading = `${envelope.bench} on ${envelope.cpu} (${envelope.backend} backend, ${envelope.threads} thread(s))`;
  const rows = envelope.results as unknown as Record<string, unknown>[];
  return `${heading}\n${rows.length > 0 ? formatTable(rows) : '(no results)\n'}`;
}

/** Run a harness, print its table and, with --json, its envelope as the last stdout line. */
export async function printBench(
  io: CliIO,
  json: boolean,
  run: () => Promise<BenchEnvelope>,
): Promise<number> {
  const envelope = await run();
  io.out(formatBenchEnvelope(envelope));
  if (json) io.json(envelope);
  return 0;
}
