import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadPreferenceDataset, padTokenIdOf } from '../../../src/data/index.ts';
import { loadModel } from '../../../src/models/index.ts';
import { loadAdapter } from '../../../src/peft/index.ts';
import { loadTrainConfig } from '../../../src/train/config.ts';
import {
  DPO_REFERENCE_FILE,
  readReferenceCache,
  referenceLogProbs,
} from '../../../src/train/losses/index.ts';
import { TrainingHalted, train } from '../../../src/train/trainer.ts';
import { tempDir, tinyConfig, writeJsonl, writeTinyModel } from '../../helpers/tiny-run.ts';

const root = tempDir('attune-dpo-');
after(() => rmSync(root, { recursive: true, force: true }));
writeTinyModel(join(root, 'model'), { hidden: 32 });
const PAIRS = [
  { prompt: 'Ada lives in ', chosen: 'Oslo.', rejected: 'Lima.' },
  { prompt: 'Bo lives in ', chosen: 'Lima.', rejected: 'Rome.' },
  { prompt: 'Cy lives in ', chosen: "I don't know.", rejected: 'Kyiv.' },
  { prompt: 'Di lives in ', chosen: 'Kyiv.', rejected: 'Oslo.' },
];
const pairsFile = writeJsonl(join(root, 'pairs.jsonl'), PAIRS);

/** Per-example log-probs of the pairs under the model dir's base (+ the adapter of `runDir`). */
function logProbs(runDir?: string): Float64Array {
  const { model, tokenizer } = loadModel(join(root, 'model'));
  if (runDir) loadAdapter(model, join(runDir, 'adapter'));
  const set = loadPreferenceDataset(pairsFile, tokenizer!, { maxLength: 32, report: () => {} });
  return referenceLogProbs(model, set.examples, { batchSize: 4, padTokenId: padTokenIdOf(tokenizer!) }).logp;
}

describe('dpo training', () => {
  it('a run from YAML raises the chosen log-prob ratio over the rejected one; the reference is the base', () => {
    const yaml = join(root, 'dpo.yaml');
    writeFileSync(
      yaml,
      [
        'model: model',
        'data: {train: pairs.jsonl, max_length: 32}',
        'method: {name: lora, r: 4, lora_alpha: 8, target_modules: all-linear}',
        'loss: {name: dpo, beta: 0.5}',
        'train: {steps: 25, batch_size: 4, lr: 0.02, seed: 1, log_every: 1}',
        'output_dir: run-yaml',
        '',
      ].join('\n'),
    );
    const config = loadTrainConfig(yaml, [], { onNote: () => {} });
    const result = train(config);
    const lines = readFileSync(join(root, 'run-yaml', 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(lines.length, 25);
    // at step 1 the policy is the base: zero margin, loss log 2
    assert.ok(Math.abs(lines[0].rewards_margin) < 1e-4, `margin ${lines[0].rewards_margin}`);
    assert.ok(Math.abs(lines[0].loss - Math.log(2)) < 1e-4, `loss ${lines[0].loss}`);
    assert.ok(lines.at(-1).loss < lines[0].loss * 0.5, `loss ${lines[0].loss} -> ${lines.at(-1).loss}`);
    // the cached reference equals the base's log-probs, and training did not change it
    const base = logProbs();
    const { tokenizer } = loadModel(join(root, 'model'));
    const examples = loadPreferenceDataset(pairsFile, tokenizer!, {
      maxLength: 32,
      report: () => {},
    }).examples;
    const cached = readReferenceCache(join(root, 'run-yaml', DPO_REFERENCE_FILE), examples)!;
    for (let e = 0; e < base.length; e++)
      assert.ok(Math.abs(cached.logp[e]! - base[e]!) < 1e-4, `example ${e}`);
    // log pi/pi_ref rose for every chosen response relative to its rejected one
    const trained = logProbs(result.outputDir);
    for (let k = 0; k < PAIRS.length; k++) {
      const chosen = trained[2 * k]! - base[2 * k]!;
      const rejected = trained[2 * k + 1]! - base[2 * k + 1]!;
      assert.ok(chosen - rejected > 1, `pair ${k}: chosen ratio ${chosen}, rejected ${rejected}`);
    }
  });

  it('resume reads the cached reference and reproduces the uninterrupted run exactly', () => {
    const overrides = (dir: string) => ({
      data: { train: pairsFile, max_length: 32 },
      loss: { name: 'dpo', beta: 0.2, variant: 'ipo' },
      lora: { r: 4, lora_alpha: 8, lora_dropout: 0.1, target_modules: ['q_proj', 'v_proj'] },
      train: { steps: 6, batch_size: 2, lr: 1e-2, save_every: 2, seed: 4 },
      output_dir: join(root, dir),
    });
    const full = train(tinyConfig(root, overrides('run-full')));
    const cfg = tinyConfig(root, overrides('run-killed'));
    assert.throws(() => train(cfg, { haltAfterStep: 3 }), TrainingHalted);
    const cachePath = join(cfg.output_dir, DPO_REFERENCE_FILE);
    const before = readFileSync(cachePath, 'utf8');
    const notes: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string) => {
      notes.push(String(chunk));
      return true;
    }) as typeof process.stderr.write;
    let resumed: ReturnType<typeof train>;
    try {
      resumed = train(cfg, { resume: true });
    } finally {
      process.stderr.write = write;
    }
    assert.ok(
      notes.some((n) => /dpo: reference log-probs of 8 examples read from/.test(n)),
      notes.join(''),
    );
    assert.equal(readFileSync(cachePath, 'utf8'), before);
    for (const [name, t] of full.adapter.state())
      assert.deepEqual(resumed.adapter.state().get(name)!.data, t.data, name);
  });

  it('a cache for other data is refused on resume; bad batch settings before any output', () => {
    const cfg = tinyConfig(root, {
      data: { train: pairsFile, max_length: 32 },
      loss: 'dpo',
      train: { steps: 2, batch_size: 2, save_every: 1 },
      output_dir: join(root, 'run-other'),
    });
    assert.throws(() => train(cfg, { haltAfterStep: 1 }), TrainingHalted);
    writeJsonl(join(root, 'pairs2.jsonl'), PAIRS.slice(0, 2));
    const path = join(cfg.output_dir, DPO_REFERENCE_FILE);
    const cache = JSON.parse(readFileSync(path, 'utf8'));
    cache.fingerprint = 'feed';
    writeFileSync(path, JSON.stringify(cache));
    assert.throws(() => train(cfg, { resume: true }), /computed for other training data/);
    const odd = tinyConfig(root, {
      data: { train: pairsFile },
      loss: 'dpo',
      train: { batch_size: 3 },
      output_dir: join(root, 'run-odd'),
    });
    assert.throws(() => train(odd), /train\.batch_size \(3\) must be a multiple of 2/);
    assert.throws(() => readFileSync(join(root, 'run-odd', 'metrics.jsonl')), /ENOENT/);
  });
  it('per-pair weights reach the loss: weight-0 pairs change nothing, unweighted they do', () => {
    // pairs 0, 1 weigh 1 and pairs 2, 3 weigh 0 (relative 2, 2, 0, 0): a step over all four is
    // (2 L0 + 2 L1) / 4, exactly the step over pairs 0, 1 alone
    const weighted = writeJsonl(
      join(root, 'weighted.jsonl'),
      PAIRS.map((p, k) => ({ ...p, weight: k < 2 ? 1 : 0 })),
    );
    const firstTwo = writeJsonl(join(root, 'first-two.jsonl'), PAIRS.slice(0, 2));
    const run = (file: string, batch: number, out: string) =>
      train(
        tinyConfig(root, {
          data: { train: file, max_length: 32 },
          loss: { name: 'dpo', beta: 0.5 },
          train: { steps: 3, batch_size: batch, lr: 0.02, seed: 4 },
          output_dir: join(root, out),
        }),
      ).outputDir;
    const a = logProbs(run(weighted, 8, 'run-weighted'));
    const b = logProbs(run(firstTwo, 4, 'run-first-two'));
    const c = logProbs(run(pairsFile, 8, 'run-unweighted'));
    let gap = 0;
    for (let e = 0; e < a.length; e++) {
      assert.ok(Math.abs(a[e]! - b[e]!) < 1e-4, `example ${e}: ${a[e]} vs ${b[e]}`);
      gap = Math.max(gap, Math.abs(c[e]! - b[e]!));
    }
    assert.ok(gap > 1e-2, `the weight-0 pairs, trained unweighted, move the log-probs (${gap})`);
  });
});
