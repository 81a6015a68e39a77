/** Shared helpers of the io/ tests: temp folders, raw safetensors crafting, the real-model folder. */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { AttuneError, FormatError } from '../../../src/errors.ts';

/** A fresh temporary folder under os.tmpdir(); `cleanup()` removes every folder made. */
const made: string[] = [];
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'attune-io-'));
  made.push(dir);
  return dir;
}
export function cleanup(): void {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/**
 * Bytes of a safetensors file with the given header (an object, serialized; or a raw string) and
 * data section; `headerLength` overrides the length prefix.
 */
export function rawSafetensors(
  header: unknown,
  data: Uint8Array = new Uint8Array(0),
  headerLength?: number,
): Buffer {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(headerLength ?? json.length));
  return Buffer.concat([prefix, json, data]);
}

/** Write `bytes` to `dir/name` and return the path. */
export function writeRaw(dir: string, name: string, bytes: Uint8Array | string): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

/** Assert `fn` throws a one-line FormatError whose message contains every string of `parts`. */
export function assertFormatError(fn: () => unknown, parts: string[]): FormatError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof FormatError, `expected a FormatError, got ${String(caught)}`);
  assertOneLine(caught, parts);
  return caught;
}

/** Assert `error` is a one-line AttuneError mentioning every string of `parts`. */
export function assertOneLine(error: unknown, parts: string[]): void {
  assert.ok(error instanceof AttuneError, `expected an AttuneError, got ${String(error)}`);
  assert.ok(!error.message.includes('\n'), `error message is not one line: ${error.message}`);
  for (const part of parts)
    assert.ok(error.message.includes(part), `'${error.message}' does not mention '${part}'`);
}

/**
 * The folder of a real test model under ATTUNE_TEST_MODELS, or null after skipping the test (with
 * the reason printed) when the variable is unset. Under CI=true a missing variable fails the test.
 */
export function testModelDir(t: TestContext, name: string): string | null {
  const root = process.env.ATTUNE_TEST_MODELS;
  if (!root) {
    const reason =
      'ATTUNE_TEST_MODELS is not set (a folder holding tinystories-656k/ and tiny-gpt2-random/, e.g. ../shared/models)';
    if (process.env.CI === 'true') assert.fail(`${reason}: real-model tests must run under CI=true`);
    t.skip(reason);
    return null;
  }
  const dir = join(root, name);
  assert.ok(existsSync(dir), `ATTUNE_TEST_MODELS=${root} has no ${name}/`);
  return dir;
}

/** The golden values file of the tinystories model (in `fixtures/` beside the models folder). */
export function tinystoriesFixturePath(): string {
  const path = join(process.env.ATTUNE_TEST_MODELS ?? '', '..', 'fixtures', 'tinystories-656k.json');
  assert.ok(existsSync(path), `missing fixture ${path} (expected beside ATTUNE_TEST_MODELS)`);
  return path;
}
