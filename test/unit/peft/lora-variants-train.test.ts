/**
 * The lora tuner's PEFT variants through the trainer, from a training config: DoRA trains its
 * magnitude, PiSSA / OLoRA / CorDA train on the residual base, and every saved adapter loads onto the
 * original base model with the trained model's outputs.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadModel } from '../../../src/models/index.ts';
import { type LoraAdapter, loadAdapter } from '../../../src/peft/index.ts';
import { validateTrainConfig } from '../../../src/train/config.ts';
import { train } from '../../../src/train/trainer.ts';
import { FACTS, tempDir, writeJsonl, writeTinyModel } from '../../helpers/tiny-run.ts';
import { logitsOf, maxAbsDiff, tokens } from './helpers.ts';

const root = tempDir('attune-lora-variants-');
after(() => rmSync(root, { recursive: true, force: true }));
const IDS = tokens(8);

describe('lora variants through the trainer', () => {
  const modelDir = writeTinyModel(join(root, 'model'));
  const data = writeJsonl(join(root, 'train.jsonl'), FACTS);
  for (const [name, options] of [
    ['dora', { use_dora: true }],
    ['pissa', { init_lora_weights: 'pissa' }],
    ['olora', { init_lora_weights: 'olora' }],
    // calibration on the training data (corda_config.data null) and on a file of its own
    ['corda-ipm', { init_lora_weights: 'corda', corda_config: { corda_method: 'ipm' } }],
    ['kasa', { kasa_config: {} }],
    [
      'corda-kpm',
      { init_lora_weights: 'corda', corda_config: { corda_method: 'kpm', data, max_samples: 3 } },
    ],
  ] as const) {
    it(`${name}: trains, saves PEFT files and loads onto the original base`, () => {
      const config = validateTrainConfig(
        {
          model: modelDir,
          data: { train: data, max_length: 32 },
          method: { name: 'lora', r: 4, lora_alpha: 8, target_modules: ['q_proj', 'v_proj'], ...options },
          train: { steps: 6, batch_size: 2, lr: 2e-2, seed: 3 },
          output_dir: join(root, name),
        },
        name,
      );
      const result = train(config);
      const adapter = result.adapter as LoraAdapter;
      const json = JSON.parse(readFileSync(join(result.adapterDir, 'adapter_config.json'), 'utf8'));
      if (name === 'dora') {
        assert.equal(json.use_dora, true);
        const [, layer] = adapter.layers()[0]!;
        const base = loadModel(modelDir).model;
        const w = base.getParameter('model.layers.0.self_attn.q_proj.weight').toArray();
        const norms = Array.from({ length: layer.outFeatures }, (_, o) =>
          Math.sqrt(w.slice(o * layer.inFeatures, (o + 1) * layer.inFeatures).reduce((s, v) => s + v * v, 0)),
        );
        assert.ok(
          maxAbsDiff(layer.lora_magnitude_vector!.toArray(), norms) > 1e-4,
          'the magnitude was trained',
        );
      } else if (name === 'kasa') {
        assert.deepEqual(json.kasa_config, { beta: 1e-4, gamma: 1e-3 });
        const log = readFileSync(join(config.output_dir, 'metrics.jsonl'), 'utf8');
        assert.match(log, /"kasa_reg":/, 'the regulariser is logged');
      } else if (name.startsWith('corda')) {
        assert.equal(json.init_lora_weights, 'corda');
        assert.equal(json.corda_config.corda_method, name.slice(6));
      } else assert.equal(json.init_lora_weights, name);
      const trained = logitsOf(result.model, IDS);
      const fresh = loadModel(modelDir).model;
      assert.ok(maxAbsDiff(logitsOf(fresh, IDS), trained) > 1e-4, 'training changed the outputs');
      loadAdapter(fresh, result.adapterDir);
      assert.ok(maxAbsDiff(logitsOf(fresh, IDS), trained) < 1e-4);
    });
  }
});
