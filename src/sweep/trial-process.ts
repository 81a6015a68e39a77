/**
 * The entry of one trial process (started by the local executor): `node trial-process.js OUT SPEC`
 * runs trial SPEC (JSON: id, params, seed) under OUT with runTrial and exits 0 when result.json is
 * written, 130 when SIGINT/SIGTERM stopped it after a checkpoint, 1 on an error (its message as the
 * last stderr line). Kernel threads come from ATTUNE_THREADS, set by the executor.
 */
import { TrainingInterrupted } from '../train/trainer.ts';
import type { TrialSpec } from './space.ts';
import { runTrial } from './trial.ts';

const [out, specJson] = process.argv.slice(2);
const controller = new AbortController();
const onSignal = () => {
  controller.abort();
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
// the executor or worker that started this process is gone: stop at once, as if killed with it
const onParentGone = () => process.exit(137);
process.on('disconnect', onParentGone);
try {
  await runTrial(out!, JSON.parse(specJson!) as TrialSpec, { signal: controller.signal });
  process.exitCode = 0;
} catch (error) {
  process.stderr.write(`${(error as Error).message.replace(/\s*\n\s*/g, ' ')}\n`);
  process.exitCode = error instanceof TrainingInterrupted ? 130 : 1;
} finally {
  // an open IPC channel would keep this process alive
  process.off('disconnect', onParentGone);
  process.disconnect?.();
}
