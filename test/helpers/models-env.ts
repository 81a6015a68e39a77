/**
 * Access to the real Hub checkpoints in ATTUNE_TEST_MODELS (set by .ci/run). Locally a missing dir
 * skips the test with a printed reason; under CI=true it fails.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** Path of a real test model, or a skip reason (throws under CI when missing). */
export function testModelDir(name: string): { dir: string; skip: false } | { dir: null; skip: string } {
  const root = process.env.ATTUNE_TEST_MODELS;
  const dir = root ? join(root, name) : null;
  if (dir && existsSync(dir)) return { dir, skip: false };
  const reason = root ? `${dir} does not exist` : 'ATTUNE_TEST_MODELS is not set';
  if (process.env.CI === 'true') throw new Error(`real test model '${name}' is required under CI: ${reason}`);
  return { dir: null, skip: `skipped: ${reason}` };
}
