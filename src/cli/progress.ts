/**
 * Progress on stderr: a live bar (cli-progress) when stderr is a terminal, plain lines at most
 * every ~2 s otherwise (CI logs, pipes), so a log stays short and readable.
 *
 *   const p = progress({ label: 'train', total: steps });
 *   p.update(step, { loss: 2.31 });
 *   p.stop();
 */
import cliProgress from 'cli-progress';
import { formatNumber } from './table.ts';

/** Values shown next to the count (`loss=2.31`). */
export type ProgressFields = Record<string, number | string>;

export interface Progress {
  /** Set the number of items done and, optionally, the values shown next to it. */
  update(value: number, fields?: ProgressFields): void;
  /** Add `delta` (default 1) to the items done. */
  increment(delta?: number, fields?: ProgressFields): void;
  /** Finish: print the final state (idempotent). */
  stop(): void;
}

/** Where progress is written (process.stderr by default). */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

export interface ProgressOptions {
  label: string;
  total: number;
  stream?: ProgressStream;
  /** Force the live bar on or off (default: whether the stream is a terminal). */
  tty?: boolean;
  /** Minimum time between plain lines, in ms (default 2000). */
  intervalMs?: number;
  /** Clock in ms (tests). */
  now?: () => number;
}

/** `loss=2.31 lr=0.0001`. */
export function formatFields(fields: ProgressFields): string {
  return Object.entries(fields)
    .map(([key, value]) => `${key}=${typeof value === 'number' ? formatNumber(value) : value}`)
    .join(' ');
}

/** `45s`, `4m05s`, `2h03m`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** A progress reporter for `total` items; see the module comment. */
export function progress(options: ProgressOptions): Progress {
  const stream = options.stream ?? process.stderr;
  const tty = options.tty ?? stream.isTTY === true;
  return tty ? barProgress(options, stream) : lineProgress(options, stream);
}

function barProgress(options: ProgressOptions, stream: ProgressStream): Progress {
  const bar = new cliProgress.SingleBar(
    {
      format: `${options.label} [{bar}] {percentage}% {value}/{total} eta {eta_formatted} {fields}`,
      stream: stream as NodeJS.WritableStream,
      hideCursor: true,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(options.total, 0, { fields: '' });
  let value = 0;
  let stopped = false;
  return {
    update(next, fields) {
      value = next;
      bar.update(next, fields ? { fields: formatFields(fields) } : {});
    },
    increment(delta = 1, fields) {
      this.update(value + delta, fields);
    },
    stop() {
      if (stopped) return;
      stopped = true;
      bar.stop();
    },
  };
}

function lineProgress(options: ProgressOptions, stream: ProgressStream): Progress {
  const now = options.now ?? Date.now;
  const interval = options.intervalMs ?? 2000;
  const started = now();
  let lastPrinted = started;
  let value = 0;
  let fields: ProgressFields = {};
  let printedValue: number | null = null;
  let stopped = false;

  const print = (at: number) => {
    const { total, label } = options;
    const percent = total > 0 ? ` (${((100 * value) / total).toFixed(1)}%)` : '';
    const elapsed = (at - started) / 1000;
    const rate = elapsed > 0 ? value / elapsed : 0;
    const timing =
      value >= total
        ? ` in ${formatDuration(elapsed)}`
        : rate > 0
          ? ` ${formatNumber(rate)}/s eta ${formatDuration((total - value) / rate)}`
          : '';
    const extra = Object.keys(fields).length > 0 ? ` ${formatFields(fields)}` : '';
    stream.write(`${label}: ${value}/${total}${percent}${timing}${extra}\n`);
    lastPrinted = at;
    printedValue = value;
  };

  return {
    update(next, nextFields) {
      value = next;
      if (nextFields) fields = { ...fields, ...nextFields };
      const at = now();
      if (!stopped && at - lastPrinted >= interval) print(at);
    },
    increment(delta = 1, nextFields) {
      this.update(value + delta, nextFields);
    },
    stop() {
      if (stopped) return;
      stopped = true;
      if (printedValue !== value) print(now());
    },
  };
}
