/**
 * 'lm_head' on a model whose LM head is tied to the embedding, as PEFT reads it (lora-tied.ts):
 * without ensure_weight_tying a LoRA of the head alone over the shared table (checked against the
 * same LoRA on an untied copy of the model, a hand-built PEFT file, finite differences through the
 * fused kernel, save -> load, refused merge, unload); with it, the entry rewritten to the
 * embedding (list and regex) and modules_to_save likewise.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openSafetensors, writeSafetensors } from '../../../src/io/index.ts';
import {
  type CausalLM,
  type LlamaForCausalLM,
  loadModel,
  scoreNextTokens,
} from '../../../src/models/index.ts';
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  applyLora,
  type LoraAdapter,
  LoraEmbedding,
  loadAdapter,
} from '../../../src/peft/index.ts';
import { fromArray, noGrad, Rng, scope, type Tensor } from '../../../src/tensor/index.ts';
import { validateTrainConfig } from '../../../src/train/config.ts';
import { train } from '../../../src/train/trainer.ts';
import { gradCheck } from '../../helpers/gradcheck.ts';
import { FACTS, writeJsonl, writeTinyModel } from '../../helpers/tiny-run.ts';
import { logitsOf, maxAbsDiff, tinyLlama, tokens } from './helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'attune-lora-tied-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
let dirCount = 0;
const freshDir = () => join(tmp, `adapter-${dirCount++}`);

const IDS = tokens(9);
const V = 50;
const D = 32;
const HEAD_A = 'base_model.model.lm_head.lora_A.weight';
const HEAD_B = 'base_model.model.lm_head.lora_B.weight';

/** Every trainable tensor of the adapter moved by seeded N(0, scale^2) values. */
function perturb(adapter: LoraAdapter, seed: number, scale = 0.05): void {
  const rng = new Rng(seed);
  for (const p of adapter.trainableParameters()) {
    const start = p.toArray();
    p.fillWith((i) => start[i]! + scale * rng.normal());
  }
}

/** An untied model with the tied one's weights and lm_head.weight = its embedding table. */
function untiedCopy(tied: LlamaForCausalLM): LlamaForCausalLM {
  const out = tinyLlama({ tied: false });
  const from = new Map(tied.namedParameters());
  for (const [name, p] of out.namedParameters()) {
    const src = name === 'lm_head.weight' ? from.get('model.embed_tokens.weight')! : from.get(name)!;
    const values = src.toArray();
    p.fillWith((i) => values[i]!);
  }
  return out;
}

/** Final hidden states of IDS, as a plain array [T * D]. */
function hiddenOf(model: LlamaForCausalLM): number[] {
  return noGrad(() =>
    scope(() =>
      Array.from(
        model.forwardHidden(fromArray(Int32Array.from(IDS), [1, IDS.length], { dtype: 'i32' })).data,
      ),
    ),
  );
}

describe("tied LM head: 'lm_head' without ensure_weight_tying (PEFT: a lora.Linear over the shared table)", () => {
  it('is the same LoRA as on an untied copy of the model (head only; the input side keeps the table)', () => {
    const model = tinyLlama();
    const base = logitsOf(model, IDS);
    const adapter = applyLora(model, { r: 2, loraAlpha: 4, targetModules: ['q_proj', 'lm_head'] });
    assert.deepEqual(
      adapter.layers().map(([n]) => n),
      ['model.layers.0.self_attn.q_proj', 'model.layers.1.self_attn.q_proj', 'lm_head'],
    );
    assert.deepEqual(logitsOf(model, IDS), base, 'B = 0 at the start');
    perturb(adapter, 4);
    const untied = untiedCopy(tinyLlama());
    const reference = applyLora(untied, { r: 2, loraAlpha: 4, targetModules: ['q_proj', 'lm_head'] });
    const state = adapter.state();
    for (const [key, t] of reference.state()) {
      const values = state.get(key)!.toArray();
      (t as Tensor & { fillWith(f: (i: number) => number): void }).fillWith((i) => values[i]!);
    }
    assert.ok(maxAbsDiff(logitsOf(model, IDS), logitsOf(untied, IDS)) < 1e-5);
    // the embedding lookup is untouched: the table is not the adapted head
    assert.equal(model.model.embed_tokens.constructor.name, 'Embedding');
  });

  it("saves PEFT's keys and target_modules, loads back, refuses merging, unloads to the base", () => {
    const model = tinyLlama();
    const base = logitsOf(model, IDS);
    const table = model.model.embed_tokens.weight.toArray();
    const adapter = applyLora(model, { r: 2, targetModules: ['lm_head'] });
    perturb(adapter, 5);
    const got = logitsOf(model, IDS);
    assert.ok(maxAbsDiff(got, base) > 1e-3, 'the head LoRA changes the logits');
    const dir = freshDir();
    adapter.save(dir);
    const json = JSON.parse(readFileSync(join(dir, ADAPTER_CONFIG_FILE), 'utf8'));
    assert.deepEqual(json.target_modules, ['lm_head']);
    assert.equal(json.ensure_weight_tying, undefined);
    const reader = openSafetensors(join(dir, ADAPTER_WEIGHTS_FILE));
    try {
      assert.deepEqual(reader.names().sort(), [HEAD_A, HEAD_B]);
      assert.deepEqual(reader.info(HEAD_A).shape, [2, D]);
      assert.deepEqual(reader.info(HEAD_B).shape, [V, 2]);
    } finally {
      reader.close();
    }
    const other = tinyLlama();
    loadAdapter(other, dir);
    assert.deepEqual(logitsOf(other, IDS), got);
    assert.throws(
      () => adapter.merge(),
      /cannot merge: target_modules names 'lm_head'.*ensure_weight_tying: true/,
    );
    assert.throws(() => adapter.mergeAndUnload(), /cannot merge and unload/);
    adapter.unload();
    assert.equal(model.lmHeadOverride, null);
    assert.deepEqual(logitsOf(model, IDS), base);
    assert.deepEqual(model.model.embed_tokens.weight.toArray(), table);
  });

  it('loads a hand-built PEFT adapter (regex target_modules) to h (E + s B A)^T', () => {
    const rng = new Rng(8);
    const a = Array.from({ length: 2 * D }, () => 0.2 * rng.normal());
    const b = Array.from({ length: V * 2 }, () => 0.2 * rng.normal());
    const dir = freshDir();
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, ADAPTER_CONFIG_FILE),
      JSON.stringify({
        peft_type: 'LORA',
        task_type: 'CAUSAL_LM',
        r: 2,
        lora_alpha: 6,
        target_modules: 'lm_h.*',
      }),
    );
    writeSafetensors(
      join(dir, ADAPTER_WEIGHTS_FILE),
      new Map([
        [HEAD_A, fromArray(Float32Array.from(a), [2, D])],
        [HEAD_B, fromArray(Float32Array.from(b), [V, 2])],
      ]),
    );
    const model = tinyLlama();
    const hidden = hiddenOf(model);
    const e = model.model.embed_tokens.weight.toArray();
    loadAdapter(model, dir);
    const got = logitsOf(model, IDS);
    let worst = 0;
    for (let t = 0; t < IDS.length; t++)
      for (let v = 0; v < V; v++) {
        let want = 0;
        for (let k = 0; k < D; k++) {
          let w = e[v * D + k]!;
          for (let j = 0; j < 2; j++) w += 3 * b[v * 2 + j]! * a[j * D + k]!;
          want += hidden[t * D + k]! * w;
        }
        worst = Math.max(worst, Math.abs(got[t * V + v]! - want));
      }
    assert.ok(worst < 1e-4, `max diff ${worst}`);
  });

  it('finite-difference gradients of the head LoRA through the fused loss kernel', () => {
    const model = tinyLlama({ dtype: 'f64' });
    const adapter = applyLora(model, { r: 2, loraAlpha: 4, targetModules: ['lm_head'] });
    perturb(adapter, 3, 0.3);
    const [, head] = adapter.layers().find(([n]) => n === 'lm_head')!;
    const ids = fromArray(Int32Array.from(IDS), [1, IDS.length], { dtype: 'i32' });
    const labels = fromArray(Int32Array.from([-100, ...IDS.slice(1)]), [1, IDS.length], { dtype: 'i32' });
    gradCheck(
      'tied head-only lora',
      () => {
        const r = scoreNextTokens(model, ids, labels).result;
        return [r.logp, r.entropy];
      },
      [head.lora_A.weight, head.lora_B.weight],
      { tol: 1e-5 },
    );
  });

  it("follows the model's training mode: lora_dropout is refused in a training forward only", () => {
    const model = tinyLlama();
    applyLora(model, { r: 2, loraDropout: 0.1, targetModules: ['lm_head'] });
    const ids = fromArray(Int32Array.from(IDS), [1, IDS.length], { dtype: 'i32' });
    const labels = fromArray(Int32Array.from([-100, ...IDS.slice(1)]), [1, IDS.length], { dtype: 'i32' });
    model.train(false);
    noGrad(() => scope(() => scoreNextTokens(model, ids, labels)));
    model.train(true);
    assert.throws(() => scope(() => scoreNextTokens(model, ids, labels)), /lora_dropout on the LM head/);
  });

  it('trains through the trainer from a config (the head LoRA moves) and the saved adapter reloads', () => {
    const modelDir = writeTinyModel(join(tmp, 'model'));
    const config = validateTrainConfig(
      {
        model: modelDir,
        data: { train: writeJsonl(join(tmp, 'facts.jsonl'), FACTS), max_length: 32 },
        method: { name: 'lora', r: 4, lora_alpha: 8, target_modules: ['q_proj', 'lm_head'] },
        train: { steps: 5, batch_size: 2, lr: 2e-2, seed: 3 },
        output_dir: join(tmp, 'run'),
      },
      'tied-head',
    );
    const result = train(config);
    const adapter = result.adapter as LoraAdapter;
    const [, head] = adapter.layers().find(([n]) => n === 'lm_head')!;
    assert.ok(
      head.lora_B.weight.toArray().some((v) => v !== 0),
      'lm_head lora_B trained away from 0',
    );
    const ids = [72, 101, 108, 108, 111, 32, 119];
    const trained = logitsOf(result.model as LlamaForCausalLM, ids);
    const fresh = loadModel(modelDir).model as CausalLM;
    loadAdapter(fresh, result.adapterDir);
    assert.ok(maxAbsDiff(logitsOf(fresh as LlamaForCausalLM, ids), trained) < 1e-4);
  });

  it('refuses DoRA there, and a modules_to_save copy of the head alone', () => {
    assert.throws(
      () => applyLora(tinyLlama(), { targetModules: ['lm_head'], useDora: true }),
      /use_dora is not supported on the tied LM head 'lm_head'/,
    );
    assert.throws(
      () => applyLora(tinyLlama(), { targetModules: ['q_proj'], modulesToSave: ['lm_head'] }),
      /modules_to_save names 'lm_head'.*set ensure_weight_tying: true/,
    );
  });

  it('layers_to_transform and exclude_modules keep lm_head out, as in PEFT', () => {
    const a = applyLora(tinyLlama(), { targetModules: ['q_proj', 'lm_head'], layersToTransform: [1] });
    assert.deepEqual(
      a.layers().map(([n]) => n),
      ['model.layers.1.self_attn.q_proj'],
    );
    const b = applyLora(tinyLlama(), { targetModules: ['q_proj', 'lm_head'], excludeModules: ['lm_head'] });
    assert.ok(b.layers().every(([n]) => n !== 'lm_head'));
  });
});

describe("tied LM head: 'lm_head' with ensure_weight_tying (PEFT's _add_targets_to_tie)", () => {
  it('a list entry becomes the embedding: the same adapter as targeting it, saved rewritten', () => {
    const model = tinyLlama();
    const adapter = applyLora(model, {
      r: 2,
      targetModules: ['q_proj', 'lm_head'],
      ensureWeightTying: true,
    });
    assert.ok(model.model.embed_tokens instanceof LoraEmbedding);
    assert.ok(adapter.layers().every(([n]) => n !== 'lm_head'));
    perturb(adapter, 2);
    const same = tinyLlama();
    const direct = applyLora(same, {
      r: 2,
      targetModules: ['q_proj', 'embed_tokens'],
      ensureWeightTying: true,
    });
    perturb(direct, 2);
    assert.deepEqual(logitsOf(model, IDS), logitsOf(same, IDS));
    const dir = freshDir();
    adapter.save(dir);
    const json = JSON.parse(readFileSync(join(dir, ADAPTER_CONFIG_FILE), 'utf8'));
    assert.deepEqual(json.target_modules, ['q_proj', 'model.embed_tokens']);
    const other = tinyLlama();
    loadAdapter(other, dir);
    assert.deepEqual(logitsOf(other, IDS), logitsOf(model, IDS));
  });

  it('a regex gains the embedding path', () => {
    const model = tinyLlama();
    const adapter = applyLora(model, { r: 2, targetModules: '.*v_proj|lm_head', ensureWeightTying: true });
    assert.equal(adapter.savedTargetModules, '(?:.*v_proj|lm_head|^model\\.embed_tokens$)');
    assert.ok(model.model.embed_tokens instanceof LoraEmbedding);
    assert.equal(adapter.layers().length, 2);
  });

  it('modules_to_save: lm_head becomes one trained copy of the table for both sides', () => {
    const model = tinyLlama();
    const adapter = applyLora(model, {
      r: 2,
      targetModules: ['q_proj'],
      modulesToSave: ['lm_head'],
      ensureWeightTying: true,
    });
    assert.deepEqual(adapter.config.modulesToSave, ['model.embed_tokens']);
    const copy = model.model.embed_tokens.weight;
    const rng = new Rng(1);
    copy.fillWith((i) => copy.toArray()[i]! + 0.3 * rng.normal());
    const hidden = hiddenOf(model);
    const c = copy.toArray();
    const got = logitsOf(model, IDS);
    let worst = 0;
    for (let t = 0; t < IDS.length; t++)
      for (let v = 0; v < V; v++) {
        let want = 0;
        for (let k = 0; k < D; k++) want += hidden[t * D + k]! * c[v * D + k]!;
        worst = Math.max(worst, Math.abs(got[t * V + v]! - want));
      }
    assert.ok(worst < 1e-4, 'the head applies the trained copy');
  });
});
