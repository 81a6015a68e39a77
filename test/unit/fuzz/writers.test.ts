/**
 * Writers refusing hostile input leave nothing behind: a training run or a merge whose model,
 * weights, data or config is fuzzed either succeeds or fails with a typed one-line error, and on
 * failure its output folder (and any temp folder next to it) does not exist.
 */
import assert from 'node:assert/strict';
import { cpSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { validateMergeConfig } from '../../../src/merge/config.ts';
import { runMerge } from '../../../src/merge/engine.ts';
import { train } from '../../../src/train/trainer.ts';
import { FACTS, tinyConfig, writeJsonl, writeTinyModel } from '../../helpers/tiny-run.ts';
import { FuzzReport, fuzzDir, hostileValue, jsonPaths, mutateBytes, Rng, withValueAt } from './harness.ts';

const { dir, remove } = fuzzDir();
after(remove);

const base = join(dir, 'base');
writeTinyModel(base, { hidden: 16, layers: 1 });
writeJsonl(join(dir, 'train.jsonl'), FACTS);

/** A copy of the base model with one file mutated (config.json, the weights or the tokenizer). */
function hostileModel(rng: Rng, folder: string): string {
  cpSync(base, folder, { recursive: true });
  const file = rng.pick(['config.json', 'model.safetensors', 'tokenizer.json']);
  const path = join(folder, file);
  const bytes = readFileSync(path);
  if (file === 'config.json' && rng.int(2) === 0) {
    const config = JSON.parse(bytes.toString('utf8'));
    writeFileSync(path, JSON.stringify(withValueAt(config, rng.pick(jsonPaths(config)), hostileValue(rng))));
  } else if (file === 'model.safetensors') {
    // Mostly the header (the first bytes): a corrupt body is valid data.
    const cut = Math.min(bytes.length, 8 + bytes.readUInt32LE(0) + 16);
    const { bytes: head } = mutateBytes(bytes.subarray(0, cut), rng);
    writeFileSync(path, Buffer.concat([head, bytes.subarray(cut)]));
  } else {
    writeFileSync(path, mutateBytes(bytes, rng).bytes);
  }
  return file;
}

/** Nothing named `name` or `.name.tmp-*` in `parent`. */
function assertNothingLeft(parent: string, name: string): void {
  const left = readdirSync(parent).filter((f) => f === name || f.startsWith(`.${name}.tmp`));
  assert.deepEqual(left, [], `left behind in ${parent}`);
}

describe('writers refusing hostile input leave no output', () => {
  it('train: 24 runs on fuzzed models or data; a failed run creates no output_dir', () => {
    const rng = new Rng(51);
    const report = new FuzzReport();
    for (let i = 0; i < 24; i++) {
      const model = join(dir, `train-model-${i}`);
      let data = join(dir, 'train.jsonl');
      let what: string;
      if (i % 3 === 2) {
        cpSync(base, model, { recursive: true });
        data = join(dir, `train-${i}.jsonl`);
        const lines = FACTS.map((r) => JSON.stringify(r));
        lines[rng.int(lines.length)] = JSON.stringify(
          withValueAt(FACTS[0], ['completion'], hostileValue(rng)),
        );
        writeFileSync(data, lines.join('\n'));
        what = 'data';
      } else what = hostileModel(rng, model);
      const outputDir = join(dir, `run-${i}`);
      report.run(
        `train case ${i} (${what})`,
        [],
        () => {
          let ok = false;
          try {
            train(
              tinyConfig(dir, { model, data: { train: data }, train: { steps: 1 }, output_dir: outputDir }),
            );
            ok = true;
          } finally {
            if (!ok) assertNothingLeft(dir, `run-${i}`);
          }
        },
        20_000,
      );
    }
    report.check(10);
  });

  it('merge: 24 merges with a fuzzed input model; a failed merge creates no output', () => {
    const rng = new Rng(52);
    const report = new FuzzReport();
    const other = join(dir, 'other');
    cpSync(base, other, { recursive: true });
    for (let i = 0; i < 24; i++) {
      const model = join(dir, `merge-model-${i}`);
      const what = hostileModel(rng, model);
      const out = join(dir, `merged-${i}`);
      report.run(`merge case ${i} (${what})`, [], () => {
        let ok = false;
        try {
          const config = validateMergeConfig(
            {
              merge_method: 'linear',
              models: [
                { model, parameters: { weight: 0.5 } },
                { model: other, parameters: { weight: 0.5 } },
              ],
            },
            'merge.yaml',
            dir,
          );
          runMerge(config, { out });
          ok = true;
        } finally {
          if (!ok) assertNothingLeft(dir, `merged-${i}`);
        }
      });
    }
    report.check(5);
  });
});
