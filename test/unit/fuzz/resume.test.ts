/**
 * Fuzzed training checkpoints: `train --resume` from a checkpoint whose trainer_state.json,
 * optimizer.json, optimizer.safetensors or weights.safetensors (or the `latest` pointer) is
 * mutated either resumes or throws a one-line AttuneError naming the run folder.
 */
import { cpSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { train } from '../../../src/train/trainer.ts';
import { FACTS, tinyConfig, writeJsonl, writeTinyModel } from '../../helpers/tiny-run.ts';
import { FuzzReport, fuzzDir, hostileValue, jsonPaths, mutateBytes, Rng, withValueAt } from './harness.ts';

const { dir, remove } = fuzzDir();
after(remove);

describe('fuzzed training checkpoints', () => {
  it('30 resumes from mutated checkpoints: typed errors naming the run', () => {
    writeTinyModel(join(dir, 'model'), { hidden: 16, layers: 1 });
    writeJsonl(join(dir, 'train.jsonl'), FACTS);
    const config = (outputDir: string) =>
      tinyConfig(dir, { train: { steps: 3, save_every: 1, batch_size: 2 }, output_dir: outputDir });
    const run = join(dir, 'run');
    try {
      train(config(run), { haltAfterStep: 2 });
    } catch {
      // halted on purpose after step 2
    }
    const checkpoints = join(run, 'checkpoints');
    const step = readdirSync(checkpoints)
      .filter((f) => f.startsWith('step-'))
      .sort()
      .at(-1)!;
    const files = readdirSync(join(checkpoints, step));
    const rng = new Rng(71);
    const report = new FuzzReport();
    for (let i = 0; i < 30; i++) {
      const copy = join(dir, `run-${i}`);
      cpSync(run, copy, { recursive: true });
      const file = rng.pick([...files, '../latest']);
      const path = join(copy, 'checkpoints', step, file);
      const bytes = readFileSync(path);
      let what = file;
      if (file.endsWith('.json') && rng.int(2) === 0) {
        const value = JSON.parse(bytes.toString('utf8'));
        const target = rng.pick(jsonPaths(value));
        const replacement = hostileValue(rng);
        writeFileSync(path, JSON.stringify(withValueAt(value, target, replacement)));
        what += ` ${JSON.stringify(target)} := ${(JSON.stringify(replacement) ?? '').slice(0, 30)}`;
      } else {
        const mutated = mutateBytes(bytes, rng);
        writeFileSync(path, mutated.bytes);
        what += ` ${mutated.what}`;
      }
      report.run(`resume case ${i} (${what})`, [copy], () => train(config(copy), { resume: true }), 10_000);
    }
    report.check(8);
  });
});
