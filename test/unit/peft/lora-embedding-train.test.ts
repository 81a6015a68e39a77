/**
 * LoRA on embed_tokens / lm_head and modules_to_save through the trainer, from a training config:
 * the adapter trains (the fused LM head path included), saves PEFT files, loads onto the base with
 * the trained outputs and merges. The real tinystories-656k (tied embeddings, ATTUNE_TEST_MODELS)
 * runs ensure_weight_tying; a few seconds.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type CausalLM, loadModel } from '../../../src/models/index.ts';
import { type LoraAdapter, loadAdapter } from '../../../src/peft/index.ts';
import { validateTrainConfig } from '../../../src/train/config.ts';
import { train } from '../../../src/train/trainer.ts';
import { testModelDir } from '../../helpers/models-env.ts';
import { FACTS, tempDir, writeJsonl, writeTinyModel } from '../../helpers/tiny-run.ts';
import { logitsOf, maxAbsDiff } from './helpers.ts';

const root = tempDir('attune-lora-embed-train-');
after(() => rmSync(root, { recursive: true, force: true }));
const IDS = [72, 101, 108, 108, 111, 32, 119];

/** Train `method` on `modelDir`, then check the saved adapter reloads (same logits) and merges. */
function trainAndReload(
  modelDir: string,
  name: string,
  method: Record<string, unknown>,
  extra: { precision?: 'bf16-mixed'; tol?: number } = {},
) {
  const tol = extra.tol ?? 1e-4;
  const data = writeJsonl(join(root, `${name}.jsonl`), FACTS);
  const config = validateTrainConfig(
    {
      model: modelDir,
      data: { train: data, max_length: 32 },
      method: { name: 'lora', r: 4, lora_alpha: 8, ...method },
      train: { steps: 5, batch_size: 2, lr: 2e-2, seed: 3 },
      output_dir: join(root, name),
      ...(extra.precision ? { precision: extra.precision } : {}),
    },
    name,
  );
  const result = train(config);
  const json = JSON.parse(readFileSync(join(result.adapterDir, 'adapter_config.json'), 'utf8'));
  const trained = logitsOf(result.model, IDS);
  const fresh = loadModel(modelDir).model as CausalLM;
  assert.ok(maxAbsDiff(logitsOf(fresh, IDS), trained) > 1e-4, 'training changed the outputs');
  const adapter = loadAdapter(fresh, result.adapterDir) as LoraAdapter;
  assert.ok(maxAbsDiff(logitsOf(fresh, IDS), trained) < tol, 'the saved adapter gives the trained outputs');
  const merged = adapter.mergeAndUnload() as CausalLM;
  assert.ok(maxAbsDiff(logitsOf(merged, IDS), trained) < Math.max(tol, 1e-3), 'merged as unmerged');
  return { json, adapter: result.adapter as LoraAdapter };
}

describe('LoRA on embeddings / LM head and modules_to_save through the trainer', () => {
  it('tiny llama: embed_tokens LoRA + q_proj, modules_to_save: [model.norm]', () => {
    const modelDir = writeTinyModel(join(root, 'model'));
    const { json, adapter } = trainAndReload(modelDir, 'embed', {
      target_modules: ['q_proj', 'embed_tokens'],
      modules_to_save: ['model.norm'],
      ensure_weight_tying: true,
    });
    assert.deepEqual(json.modules_to_save, ['model.norm']);
    assert.equal(json.ensure_weight_tying, true);
    const names = adapter.namedTrainableParameters().map(([n]) => n);
    assert.ok(names.includes('model.norm.weight') && names.includes('model.embed_tokens.lora_embedding_A'));
  });

  it('untied tiny llama: lm_head LoRA (fused head path) + embed_tokens LoRA; modules_to_save: [lm_head]', () => {
    const modelDir = writeTinyModel(join(root, 'untied'), { tied: false });
    const { json } = trainAndReload(modelDir, 'head', {
      target_modules: ['v_proj', 'lm_head', 'embed_tokens'],
    });
    assert.deepEqual(json.target_modules, ['v_proj', 'lm_head', 'embed_tokens']);
    const { adapter } = trainAndReload(modelDir, 'head-save', {
      target_modules: ['v_proj'],
      modules_to_save: ['lm_head'],
    });
    assert.ok(adapter.namedTrainableParameters().some(([n]) => n === 'lm_head.weight'));
    // bf16-mixed: a bf16 base (head included) with f32 adapters and an f32 lm_head copy; the f32
    // base reloading it differs by the bf16 rounding of the base only
    trainAndReload(
      modelDir,
      'head-bf16',
      { target_modules: ['v_proj', 'lm_head', 'embed_tokens'], modules_to_save: ['model.norm'] },
      { precision: 'bf16-mixed', tol: 0.1 },
    );
  });

  it('tinystories-656k (tied): embed_tokens LoRA with ensure_weight_tying, trained and merged', (t) => {
    const model = testModelDir('tinystories-656k');
    if (model.skip !== false) return t.skip(model.skip);
    const { json } = trainAndReload(model.dir, 'tinystories', {
      target_modules: ['q_proj', 'v_proj', 'embed_tokens'],
      ensure_weight_tying: true,
    });
    assert.deepEqual(json.target_modules, ['q_proj', 'v_proj', 'embed_tokens']);
  });
});
