/**
 * Seeded fuzzing of Attune's readers: a deterministic PRNG, byte and JSON mutations, and the
 * property every case must satisfy: the reader either succeeds or throws a one-line AttuneError
 * naming the file (and the tensor or line where given), never a TypeError / RangeError / stack
 * overflow, and within a time bound (no hang, no huge allocation).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AttuneError } from '../../../src/errors.ts';

/** Added to every seed: 0 in the suite; set ATTUNE_FUZZ_SEED to explore other cases locally. */
const SEED_OFFSET = Number(process.env.ATTUNE_FUZZ_SEED ?? 0);

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = (seed + SEED_OFFSET) >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
}

/** Hostile JSON values: wrong types, huge and negative numbers, non-finite, deep nesting. */
export function hostileValue(rng: Rng): unknown {
  const deep = (depth: number, open: string, close: string, leaf = '') =>
    JSON.parse(open.repeat(depth) + leaf + close.repeat(depth));
  const values: (() => unknown)[] = [
    () => -1,
    () => -(2 ** 40),
    () => 2 ** 40,
    () => 2 ** 63,
    () => Number.MAX_SAFE_INTEGER + 2,
    () => 1e308,
    () => 0.5,
    () => 0,
    () => '',
    () => 'x'.repeat(1 + rng.int(40)),
    () => '\u0000\ud800',
    () => null,
    () => true,
    () => [],
    () => [1, 'a', null],
    () => ({}),
    () => ({ nested: { deeper: [1, 2, { x: -1 }] } }),
    () => deep(200 + rng.int(1200), '[', ']'),
    () => deep(200 + rng.int(1200), '{"a":', '}', '1'),
  ];
  return rng.pick(values)();
}

/** JSON text of `value` with hostile literals JSON.stringify cannot write (NaN, Infinity, 1e999). */
export function hostileLiteral(rng: Rng): string {
  return rng.pick([
    'NaN',
    'Infinity',
    '-Infinity',
    '1e999',
    '-1e999',
    '1e-999',
    '00',
    '0x10',
    '1.',
    '.5',
    '+1',
  ]);
}

/** JSON text nested `depth` levels deep (arrays or objects), deeper than JSON.stringify can write. */
export function deepJsonText(rng: Rng): string {
  const depth = 5000 + rng.int(50000);
  return rng.int(2) === 0
    ? `${'['.repeat(depth)}${']'.repeat(depth)}`
    : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
}

/** Byte-level mutations of a file's bytes. */
export function mutateBytes(bytes: Uint8Array, rng: Rng): { bytes: Uint8Array; what: string } {
  const out = Uint8Array.from(bytes);
  switch (rng.int(5)) {
    case 0: {
      const at = rng.int(bytes.length);
      return { bytes: bytes.slice(0, at), what: `truncated to ${at} bytes` };
    }
    case 1: {
      const n = 1 + rng.int(8);
      for (let i = 0; i < n; i++) out[rng.int(out.length)] = rng.int(256);
      return { bytes: out, what: `${n} random bytes` };
    }
    case 2: {
      // Invalid UTF-8: a lone continuation byte, an overlong form or a surrogate encoding.
      const bad = rng.pick([
        [0x80],
        [0xc0, 0xaf],
        [0xed, 0xa0, 0x80],
        [0xff],
        [0xf8, 0x88, 0x80, 0x80, 0x80],
      ]);
      const at = rng.int(out.length);
      const result = new Uint8Array(out.length + bad.length);
      result.set(out.subarray(0, at));
      result.set(bad, at);
      result.set(out.subarray(at), at + bad.length);
      return { bytes: result, what: `invalid UTF-8 ${bad.map((b) => b.toString(16)).join(' ')} at ${at}` };
    }
    case 3: {
      const at = rng.int(out.length);
      return {
        bytes: new Uint8Array([...out.subarray(0, at), ...out.subarray(at + 1 + rng.int(16))]),
        what: 'bytes cut',
      };
    }
    default: {
      const at = rng.int(out.length);
      const len = 1 + rng.int(32);
      const from = rng.int(out.length);
      const result = new Uint8Array([
        ...out.subarray(0, at),
        ...out.subarray(from, from + len),
        ...out.subarray(at),
      ]);
      return { bytes: result, what: 'bytes duplicated' };
    }
  }
}

/** Paths (dotted) of every value inside a JSON object, for picking a field to mutate. */
export function jsonPaths(
  value: unknown,
  prefix: (string | number)[] = [],
  out: (string | number)[][] = [],
): (string | number)[][] {
  if (prefix.length > 0) out.push(prefix);
  if (Array.isArray(value)) {
    for (const [i, v] of value.slice(0, 20).entries()) jsonPaths(v, [...prefix, i], out);
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value).slice(0, 60)) jsonPaths(v, [...prefix, k], out);
  }
  return out;
}

/** A deep copy of `value` with the value at `path` replaced (or deleted when `replacement` is undefined). */
export function withValueAt(
  value: unknown,
  path: readonly (string | number)[],
  replacement: unknown,
): unknown {
  const copy = structuredClone(value) as Record<string | number, unknown>;
  let node = copy;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  if (replacement === undefined) {
    if (Array.isArray(node)) node.splice(last as number, 1);
    else delete node[last];
  } else node[last] = replacement;
  return copy;
}

/** Outcome counts of a fuzz run, and the failures found. */
export class FuzzReport {
  ok = 0;
  errors = 0;
  readonly failures: string[] = [];
  readonly messages = new Map<string, number>();

  /**
   * Run one case: `fn` must return or throw a one-line AttuneError whose message contains every
   * string of `mustName`, within `maxMs`.
   */
  run(what: string, mustName: readonly string[], fn: () => unknown, maxMs = 2000): void {
    if (process.env.ATTUNE_FUZZ_VERBOSE) process.stderr.write(`${what}\n`);
    const started = performance.now();
    try {
      fn();
      this.ok++;
    } catch (error) {
      const problem = problemOf(error, mustName);
      if (problem === null) {
        this.errors++;
        const key = (error as Error).constructor.name;
        this.messages.set(key, (this.messages.get(key) ?? 0) + 1);
      } else this.failures.push(`${what}: ${problem}`);
    }
    const ms = performance.now() - started;
    if (ms > maxMs) this.failures.push(`${what}: took ${ms.toFixed(0)} ms (> ${maxMs})`);
  }

  /** Assert no case failed (listing up to 15), and that both outcomes occurred at least `min` times. */
  check(minErrors: number): void {
    if (this.failures.length > 0) {
      assert.fail(`${this.failures.length} failing cases:\n${this.failures.slice(0, 15).join('\n')}`);
    }
    assert.ok(this.errors >= minErrors, `only ${this.errors} cases ended in an error`);
  }
}

function problemOf(error: unknown, mustName: readonly string[]): string | null {
  if (!(error instanceof AttuneError)) {
    const e = error as Error;
    return `untyped ${e?.constructor?.name ?? typeof error}: ${String(e?.message ?? error).slice(0, 200)}\n${e?.stack?.split('\n').slice(1, 4).join('\n')}`;
  }
  if (error.message.includes('\n')) return `not one line: ${error.message.slice(0, 300)}`;
  if (error.message.length > 1000)
    return `message of ${error.message.length} chars: ${error.message.slice(0, 200)}`;
  const missing = mustName.filter((part) => !error.message.includes(part));
  if (missing.length > 0)
    return `${error.name} does not name ${missing.join(', ')}: ${error.message.slice(0, 300)}`;
  return null;
}

/** A fresh temp folder and its removal. */
export function fuzzDir(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'attune-fuzz-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
