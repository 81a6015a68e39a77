// The executors run any registered job kind (src/sweep/jobs.ts), not only sweep trials: a toy kind
// registered from outside src/ (test/plugins/note-job.ts) on the local executor.
import '../../plugins/note-job.ts';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { jobKind, registerJobKind } from '../../../src/sweep/jobs.ts';
import { runLocal } from '../../../src/sweep/local-executor.ts';
import { tempDir } from '../../helpers/tiny-run.ts';

const root = tempDir('attune-jobs-');
after(() => rmSync(root, { recursive: true, force: true }));

describe('job kinds', () => {
  it('the local executor runs jobs of a plug-in kind in their own processes, with the threads per job', async () => {
    const jobs = ['a', 'b', 'c'].map((text) => ({
      kind: 'note',
      id: text,
      payload: { file: join(root, `${text}.txt`), text },
    }));
    const failing = {
      kind: 'note',
      id: 'd',
      payload: { file: join(root, 'd.txt'), text: 'd', fail: 'no space left' },
    };
    const outcomes = await runLocal([...jobs, failing], { workers: 2, threadsPerJob: 3 });
    assert.deepEqual(outcomes.map((o) => [o.id, o.status, o.error]).sort(), [
      ['a', 'done', undefined],
      ['b', 'done', undefined],
      ['c', 'done', undefined],
      ['d', 'failed', 'no space left'],
    ]);
    for (const text of ['a', 'b', 'c'])
      assert.equal(readFileSync(join(root, `${text}.txt`), 'utf8'), `${text} threads=3`);
    assert.equal(jobKind('note').state(jobs[0]!.payload), 'done');
    assert.equal(jobKind('note').summary(jobs[0]!.payload), 'a threads=3');
  });

  it('an unknown kind is refused before any process starts; a name registers once', async () => {
    await assert.rejects(
      runLocal([{ kind: 'nope', id: 'x', payload: {} }], { workers: 1, threadsPerJob: 1 }),
      /job kind 'nope': expected one of .*note.* \(is this worker the same Attune version/,
    );
    assert.throws(() => registerJobKind({ ...jobKind('note') }), /job kind 'note' is registered twice/);
    registerJobKind(jobKind('note'));
  });
});
