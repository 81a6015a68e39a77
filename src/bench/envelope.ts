/** The JSON envelope every `attune bench ... --json` prints as its last stdout line. */
import { cpus } from 'node:os';

export interface BenchRow {
  kernel: string;
  backend: 'js' | 'native';
  [field: string]: string | number | boolean | null;
}

export interface BenchEnvelope {
  bench: string;
  backend: 'js' | 'native';
  threads: number;
  cpu: string;
  results: BenchRow[];
}

/** The CPU model name (first core). */
export function cpuName(): string {
  return cpus()[0]?.model.trim() ?? 'unknown';
}

export function envelope(
  bench: string,
  backend: 'js' | 'native',
  threads: number,
  results: BenchRow[],
): BenchEnvelope {
  return { bench, backend, threads, cpu: cpuName(), results };
}
