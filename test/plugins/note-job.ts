/**
 * A toy job kind registered from outside src/: its job writes `payload.text` to `payload.file`
 * (atomically) and records this process's ATTUNE_THREADS, so a test sees a non-trial job run by
 * the executors with the threads they were given.
 */
import { existsSync, readFileSync } from 'node:fs';
import { writeTextAtomic } from '../../src/io/atomic.ts';
import { registerJobKind } from '../../src/sweep/jobs.ts';

/** What a note job carries. */
export interface NotePayload {
  file: string;
  text: string;
  /** Fail with this message instead. */
  fail?: string;
}

registerJobKind({
  name: 'note',
  module: import.meta.url,
  state: (p) => (existsSync((p as NotePayload).file) ? 'done' : 'pending'),
  describe: (p) => `note ${(p as NotePayload).text}`,
  summary: (p) => readFileSync((p as NotePayload).file, 'utf8'),
});

/** Write the note (in the job process). */
export async function runJob(payload: unknown): Promise<void> {
  const { file, text, fail } = payload as NotePayload;
  if (fail) throw new Error(fail);
  writeTextAtomic(file, `${text} threads=${process.env.ATTUNE_THREADS}`);
}
