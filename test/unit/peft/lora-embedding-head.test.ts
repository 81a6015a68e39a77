/**
 * LoRA on an Embedding and on the LM head, PEFT's `modules_to_save`, and tied embeddings
 * (`ensure_weight_tying`): PEFT's keys and shapes, save -> load, a hand-built PEFT-layout file
 * against weights merged by hand, finite-difference gradients through the fused LM head, merge.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { FormatError, TensorMismatchError } from '../../../src/errors.ts';
import { openSafetensors, writeSafetensors } from '../../../src/io/index.ts';
import { type LlamaForCausalLM, scoreNextTokens } from '../../../src/models/index.ts';
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  applyLora,
  type LoraAdapter,
  LoraEmbedding,
  LoraLinear,
  loadAdapter,
  loraConfigFromAdapterJson,
} from '../../../src/peft/index.ts';
import { backward, fromArray, noGrad, Rng, scope, sum, type Tensor } from '../../../src/tensor/index.ts';
import { gradCheck } from '../../helpers/gradcheck.ts';
import { logitsOf, maxAbsDiff, tinyLlama, tokens } from './helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'attune-lora-embed-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
let dirCount = 0;
const freshDir = () => join(tmp, `adapter-${dirCount++}`);

const IDS = tokens(9);
const V = 50;
const D = 32;
const EMB_A = 'base_model.model.model.embed_tokens.lora_embedding_A';
const EMB_B = 'base_model.model.model.embed_tokens.lora_embedding_B';
const HEAD_A = 'base_model.model.lm_head.lora_A.weight';
const HEAD_B = 'base_model.model.lm_head.lora_B.weight';

/** Every trainable tensor of the adapter filled with seeded N(0, scale^2) values (added to its start). */
function perturb(adapter: LoraAdapter, seed: number, scale = 0.05): void {
  const rng = new Rng(seed);
  for (const p of adapter.trainableParameters()) {
    const start = p.toArray();
    p.fillWith((i) => start[i]! + scale * rng.normal());
  }
}

/** The adapter_config.json PEFT writes for a LoRA with these fields (the ones Attune reads). */
function peftConfig(fields: Record<string, unknown>): Record<string, unknown> {
  return {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: 'tiny',
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layers_pattern: null,
    layers_to_transform: null,
    lora_alpha: 8,
    lora_dropout: 0.05,
    modules_to_save: null,
    peft_type: 'LORA',
    r: 2,
    rank_pattern: {},
    revision: null,
    task_type: 'CAUSAL_LM',
    use_dora: false,
    use_rslora: false,
    ...fields,
  };
}

/** Write a PEFT adapter dir from plain arrays: key -> [shape, values]. */
function writePeftDir(
  config: Record<string, unknown>,
  tensors: Record<string, [number[], number[]]>,
): string {
  const dir = freshDir();
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, ADAPTER_CONFIG_FILE), JSON.stringify(config));
  const map = new Map<string, Tensor>();
  for (const [k, [shape, values]] of Object.entries(tensors))
    map.set(k, fromArray(Float32Array.from(values), shape));
  writeSafetensors(join(dir, ADAPTER_WEIGHTS_FILE), map);
  return dir;
}

const randomValues = (n: number, rng: Rng, scale = 0.1) =>
  Array.from({ length: n }, () => scale * rng.normal());

/** out[i, j] = sum_k a[i, k] b[k, j] for row-major plain arrays. */
function matmulPlain(a: number[], b: number[], n: number, k: number, m: number): number[] {
  const out = new Array<number>(n * m).fill(0);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < m; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += a[i * k + t]! * b[t * m + j]!;
      out[i * m + j] = s;
    }
  return out;
}

/** The transpose of a row-major [n, m] array. */
function transposePlain(a: number[], n: number, m: number): number[] {
  const out = new Array<number>(n * m);
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) out[j * n + i] = a[i * m + j]!;
  return out;
}

/** Set the model's parameter `name` to `values`. */
function setParam(model: LlamaForCausalLM, name: string, values: readonly number[]): void {
  const p = new Map(model.namedParameters()).get(name);
  assert.ok(p, `no parameter ${name}`);
  p.fillWith((i) => values[i]!);
}

describe('LoRA on Embedding and the LM head (PEFT lora.Embedding / lora.Linear)', () => {
  it("saves PEFT's keys and shapes: lora_embedding_A [r, V], lora_embedding_B [d, r], lm_head lora_A [r, d] / lora_B [V, r]", () => {
    const model = tinyLlama({ tied: false });
    const before = logitsOf(model, IDS);
    const adapter = applyLora(model, { r: 2, targetModules: ['q_proj', 'embed_tokens', 'lm_head'] });
    assert.ok(model.model.embed_tokens instanceof LoraEmbedding);
    assert.ok(model.lm_head instanceof LoraLinear);
    assert.deepEqual(logitsOf(model, IDS), before, 'A = 0 (embedding) and B = 0 (linear) at the start');
    const dir = freshDir();
    adapter.save(dir);
    const reader = openSafetensors(join(dir, ADAPTER_WEIGHTS_FILE));
    try {
      assert.deepEqual(reader.info(EMB_A).shape, [2, V]);
      assert.deepEqual(reader.info(EMB_B).shape, [D, 2]);
      assert.deepEqual(reader.info(HEAD_A).shape, [2, D]);
      assert.deepEqual(reader.info(HEAD_B).shape, [V, 2]);
      assert.ok(!reader.names().some((n) => n.includes('base_layer') || n.endsWith('embed_tokens.weight')));
    } finally {
      reader.close();
    }
    const json = JSON.parse(readFileSync(join(dir, ADAPTER_CONFIG_FILE), 'utf8'));
    assert.deepEqual(json.target_modules, ['q_proj', 'embed_tokens', 'lm_head']);
    assert.equal(json.modules_to_save, null);
    assert.equal('ensure_weight_tying' in json, false, 'written only when true');
  });

  it('save -> load gives identical logits and fused scores; merge and merge-and-unload keep them', () => {
    const model = tinyLlama({ tied: false });
    const adapter = applyLora(model, {
      r: 2,
      loraAlpha: 4,
      targetModules: ['v_proj', 'embed_tokens', 'lm_head'],
      modulesToSave: ['model.norm'],
    });
    perturb(adapter, 5);
    const want = logitsOf(model, IDS);
    const dir = freshDir();
    adapter.save(dir);
    const other = tinyLlama({ tied: false });
    const loaded = loadAdapter(other, dir) as LoraAdapter;
    assert.deepEqual(logitsOf(other, IDS), want);
    const ids = fromArray(Int32Array.from(IDS), [1, IDS.length], { dtype: 'i32' });
    const labels = fromArray(Int32Array.from([-100, ...IDS.slice(1)]), [1, IDS.length], { dtype: 'i32' });
    const score = (m: LlamaForCausalLM) =>
      noGrad(() => scope(() => Array.from(scoreNextTokens(m, ids, labels).result.logp.data)));
    assert.deepEqual(score(other), score(model));
    // the fused path and the full logits agree: log softmax at the gold token
    const logp = score(other);
    for (let t = 0; t < IDS.length - 1; t++) {
      const row = want.subarray(t * V, (t + 1) * V);
      const max = Math.max(...row);
      const lse = max + Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0));
      assert.ok(Math.abs(row[IDS[t + 1]!]! - lse - logp[t]!) < 1e-4);
    }
    loaded.merge();
    assert.ok(maxAbsDiff(logitsOf(other, IDS), want) < 1e-4);
    assert.ok(maxAbsDiff(score(other), logp) < 1e-4, 'the merged head is used by the fused path');
    loaded.unmerge();
    const plain = loaded.mergeAndUnload() as LlamaForCausalLM;
    assert.ok(plain.modules().every((m) => !(m instanceof LoraEmbedding) && !(m instanceof LoraLinear)));
    assert.equal(plain.lmHeadOverride, null);
    assert.ok(maxAbsDiff(logitsOf(plain, IDS), want) < 1e-4);
  });

  it('a hand-built PEFT file (its keys, shapes, base_layer copies) gives the logits of weights merged by hand', () => {
    const rng = new Rng(11);
    const r = 2;
    const alpha = 6;
    const s = alpha / r;
    const q = 'model.layers.1.self_attn.q_proj';
    const t = {
      [EMB_A]: [[r, V], randomValues(r * V, rng)] as [number[], number[]],
      [EMB_B]: [[D, r], randomValues(D * r, rng)] as [number[], number[]],
      [HEAD_A]: [[r, D], randomValues(r * D, rng)] as [number[], number[]],
      [HEAD_B]: [[V, r], randomValues(V * r, rng)] as [number[], number[]],
      [`base_model.model.${q}.lora_A.weight`]: [[r, D], randomValues(r * D, rng)] as [number[], number[]],
      [`base_model.model.${q}.lora_B.weight`]: [[D, r], randomValues(D * r, rng)] as [number[], number[]],
    };
    const base = tinyLlama({ tied: false });
    const params = new Map(base.namedParameters().map(([n, p]) => [n, p.toArray()]));
    // PEFT's save_embedding_layers also writes the base tables of targeted embedding layers
    const files = {
      ...t,
      'base_model.model.model.embed_tokens.base_layer.weight': [
        [V, D],
        params.get('model.embed_tokens.weight')!,
      ] as [number[], number[]],
      'base_model.model.lm_head.base_layer.weight': [[V, D], params.get('lm_head.weight')!] as [
        number[],
        number[],
      ],
    };
    const dir = writePeftDir(
      peftConfig({
        r,
        lora_alpha: alpha,
        target_modules: ['embed_tokens', 'lm_head', 'layers.1.self_attn.q_proj'],
      }),
      files,
    );
    const model = tinyLlama({ tied: false });
    loadAdapter(model, dir);
    model.train(false); // the file's lora_dropout 0.05 is for training
    // independent: W + s B A for the Linear layers, E + s (B A)^T for the table
    const expect = tinyLlama({ tied: false });
    const emb = matmulPlain(t[EMB_B][1], t[EMB_A][1], D, r, V); // [d, V]
    const embT = transposePlain(emb, D, V);
    setParam(
      expect,
      'model.embed_tokens.weight',
      params.get('model.embed_tokens.weight')!.map((w, i) => w + s * embT[i]!),
    );
    const head = matmulPlain(t[HEAD_B][1], t[HEAD_A][1], V, r, D);
    setParam(
      expect,
      'lm_head.weight',
      params.get('lm_head.weight')!.map((w, i) => w + s * head[i]!),
    );
    const dq = matmulPlain(
      t[`base_model.model.${q}.lora_B.weight`][1],
      t[`base_model.model.${q}.lora_A.weight`][1],
      D,
      r,
      D,
    );
    setParam(
      expect,
      `${q}.weight`,
      params.get(`${q}.weight`)!.map((w, i) => w + s * dq[i]!),
    );
    const got = logitsOf(model, IDS);
    assert.ok(maxAbsDiff(got, logitsOf(base, IDS)) > 1e-2, 'the adapter changes the logits');
    const diff = maxAbsDiff(got, logitsOf(expect, IDS));
    assert.ok(diff < 1e-4, `max |diff| ${diff}`);
  });

  it('a bad shape in the file is a one-line error naming the tensor; nothing is loaded', () => {
    const rng = new Rng(2);
    const dir = writePeftDir(peftConfig({ target_modules: ['embed_tokens'] }), {
      [EMB_A]: [[V, 2], randomValues(2 * V, rng)],
      [EMB_B]: [[D, 2], randomValues(2 * D, rng)],
    });
    const model = tinyLlama({ tied: false });
    const before = logitsOf(model, IDS);
    assert.throws(
      () => loadAdapter(model, dir),
      (e: Error) =>
        e instanceof TensorMismatchError &&
        !e.message.includes('\n') &&
        e.message.includes(`tensor '${EMB_A}' has shape [50,2], expected [2,50]`),
    );
    assert.ok(model.modules().every((m) => !(m instanceof LoraEmbedding)));
    assert.deepEqual(logitsOf(model, IDS), before);
  });

  it('finite-difference gradients: embedding LoRA, and lm_head LoRA through the fused loss kernel', () => {
    const model = tinyLlama({ tied: false, dtype: 'f64' });
    const adapter = applyLora(model, { r: 2, loraAlpha: 4, targetModules: ['embed_tokens', 'lm_head'] });
    perturb(adapter, 3, 0.3);
    const ids = fromArray(Int32Array.from(IDS), [1, IDS.length], { dtype: 'i32' });
    const labels = fromArray(Int32Array.from([-100, ...IDS.slice(1)]), [1, IDS.length], { dtype: 'i32' });
    const emb = model.model.embed_tokens as unknown as LoraEmbedding;
    const head = model.lm_head as unknown as LoraLinear;
    gradCheck(
      'lora embedding + head (fused logp and entropy)',
      () => {
        const r = scoreNextTokens(model, ids, labels).result;
        return [r.logp, r.entropy];
      },
      [emb.lora_embedding_A, emb.lora_embedding_B, head.lora_A.weight, head.lora_B.weight],
      { tol: 1e-5 },
    );
  });

  it('lora_dropout on the LM head is refused in a training forward (the fused kernel applies one matrix)', () => {
    const model = tinyLlama({ tied: false });
    applyLora(model, { r: 2, loraDropout: 0.1, targetModules: ['lm_head'] });
    const ids = fromArray(Int32Array.from(IDS), [1, IDS.length], { dtype: 'i32' });
    const labels = fromArray(Int32Array.from([-100, ...IDS.slice(1)]), [1, IDS.length], { dtype: 'i32' });
    model.train(false);
    noGrad(() => scope(() => scoreNextTokens(model, ids, labels)));
    model.train(true);
    assert.throws(
      () => scope(() => scoreNextTokens(model, ids, labels)),
      /lora_dropout on the LM head 'lm_head'/,
    );
  });

  it('refuses DoRA, lora_bias and base-rewriting inits on an embedding or the head', () => {
    assert.throws(
      () => applyLora(tinyLlama({ tied: false }), { targetModules: ['embed_tokens'], useDora: true }),
      /use_dora is not supported on the Embedding 'model.embed_tokens'/,
    );
    assert.throws(
      () => applyLora(tinyLlama({ tied: false }), { targetModules: ['lm_head'], loraBias: true }),
      /lora_bias is not supported on the LM head 'lm_head'/,
    );
    assert.throws(
      () => applyLora(tinyLlama({ tied: false }), { targetModules: ['lm_head'], init: 'pissa' }),
      /init_lora_weights 'pissa' is not supported on the LM head/,
    );
  });
});

describe('modules_to_save (PEFT ModulesToSaveWrapper)', () => {
  it("trains copies under the Hub names, saves PEFT's keys (modules_to_save.default stripped), unload restores", () => {
    const model = tinyLlama({ tied: false });
    const before = logitsOf(model, IDS);
    const original = model.lm_head!.weight;
    const adapter = applyLora(model, {
      r: 2,
      targetModules: ['q_proj'],
      modulesToSave: ['lm_head', 'embed_tokens'],
    });
    const names = adapter.namedTrainableParameters().map(([n]) => n);
    assert.ok(names.includes('lm_head.weight') && names.includes('model.embed_tokens.weight'));
    assert.notEqual(model.lm_head!.weight, original, 'a copy');
    assert.equal(original.requiresGrad, false);
    perturb(adapter, 8);
    assert.deepEqual(
      original.toArray(),
      (() => {
        const m = tinyLlama({ tied: false });
        return m.lm_head!.weight.toArray();
      })(),
      'the original is untouched',
    );
    const want = logitsOf(model, IDS);
    const dir = freshDir();
    adapter.save(dir);
    const reader = openSafetensors(join(dir, ADAPTER_WEIGHTS_FILE));
    try {
      assert.deepEqual(reader.info('base_model.model.lm_head.weight').shape, [V, D]);
      assert.deepEqual(reader.info('base_model.model.model.embed_tokens.weight').shape, [V, D]);
    } finally {
      reader.close();
    }
    assert.deepEqual(JSON.parse(readFileSync(join(dir, ADAPTER_CONFIG_FILE), 'utf8')).modules_to_save, [
      'lm_head',
      'embed_tokens',
    ]);
    const other = tinyLlama({ tied: false });
    loadAdapter(other, dir);
    assert.deepEqual(logitsOf(other, IDS), want);
    adapter.unload();
    assert.equal(model.lm_head!.weight, original);
    assert.deepEqual(logitsOf(model, IDS), before);
  });

  it('gradients reach the lm_head copy through the fused kernel and the embedding copy through the lookup', () => {
    const model = tinyLlama({ tied: false, dtype: 'f64' });
    applyLora(model, { r: 2, targetModules: ['q_proj'], modulesToSave: ['lm_head', 'embed_tokens'] });
    const ids = fromArray(Int32Array.from(IDS), [1, IDS.length], { dtype: 'i32' });
    const labels = fromArray(Int32Array.from([-100, ...IDS.slice(1)]), [1, IDS.length], { dtype: 'i32' });
    const loss = () => sum(scoreNextTokens(model, ids, labels).result.logp);
    const head = model.lm_head!.weight;
    const table = model.model.embed_tokens.weight;
    head.grad = null;
    table.grad = null;
    scope(() => backward(loss()));
    // entries of the gold rows (and others), by central differences: 12 per copy
    const rng = new Rng(3);
    for (const [name, p] of [
      ['lm_head', head],
      ['embed_tokens', table],
    ] as const) {
      const analytic = p.grad!.data as Float64Array;
      const data = p.data as Float64Array;
      for (let k = 0; k < 12; k++) {
        const row = k < 6 ? IDS[1 + k]! : rng.int(V);
        const i = row * D + rng.int(D);
        const at = (x: number) => {
          data[i] = x;
          return noGrad(() => scope(() => loss().toArray()[0]!));
        };
        const orig = data[i]!;
        const numeric = (at(orig + 1e-6) - at(orig - 1e-6)) / 2e-6;
        data[i] = orig;
        assert.ok(
          Math.abs(analytic[i]! - numeric) <= 1e-6 * Math.max(1, Math.abs(numeric)),
          `${name}[${i}]: analytic ${analytic[i]} vs numeric ${numeric}`,
        );
      }
      assert.ok(
        analytic.some((g) => g !== 0),
        `${name} got a gradient`,
      );
    }
  });

  it('a hand-built PEFT file with modules_to_save gives the logits of those weights set by hand', () => {
    const rng = new Rng(4);
    const headValues = randomValues(V * D, rng, 0.2);
    const dir = writePeftDir(peftConfig({ target_modules: ['q_proj'], modules_to_save: ['lm_head'] }), {
      'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight': [[2, D], randomValues(2 * D, rng)],
      'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight': [[D, 2], new Array(2 * D).fill(0)],
      'base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight': [[2, D], randomValues(2 * D, rng)],
      'base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight': [[D, 2], new Array(2 * D).fill(0)],
      'base_model.model.lm_head.weight': [[V, D], headValues],
    });
    const model = tinyLlama({ tied: false });
    loadAdapter(model, dir);
    const expect = tinyLlama({ tied: false });
    setParam(expect, 'lm_head.weight', headValues);
    assert.ok(maxAbsDiff(logitsOf(model, IDS), logitsOf(expect, IDS)) < 1e-5);
  });

  it('commands that fold B A by name refuse modules_to_save and embedding targets, naming the field', () => {
    const file = 'x/adapter_config.json';
    assert.throws(
      () =>
        loraConfigFromAdapterJson(
          peftConfig({ target_modules: ['q_proj'], modules_to_save: ['lm_head'] }) as never,
          file,
        ),
      (e: Error) => e instanceof FormatError && /'modules_to_save' is \["lm_head"\]/.test(e.message),
    );
    assert.throws(
      () =>
        loraConfigFromAdapterJson(peftConfig({ target_modules: ['q_proj', 'embed_tokens'] }) as never, file),
      /'target_modules' names 'embed_tokens'/,
    );
  });
});

describe('tied embeddings (tie_word_embeddings) and ensure_weight_tying', () => {
  it('default (PEFT): LoRA on the tied table changes the input side only; merging is refused', () => {
    const model = tinyLlama();
    const adapter = applyLora(model, { r: 2, targetModules: ['embed_tokens'] });
    perturb(adapter, 6);
    const emb = model.model.embed_tokens as unknown as LoraEmbedding;
    // independent: hidden states of the adapted input, head = the base table
    const got = logitsOf(model, IDS);
    const hidden = noGrad(() =>
      scope(() =>
        Array.from(
          model.forwardHidden(fromArray(Int32Array.from(IDS), [1, IDS.length], { dtype: 'i32' })).data,
        ),
      ),
    );
    const want = matmulPlain(hidden, transposePlain(emb.weight.toArray(), V, D), IDS.length, D, V);
    assert.ok(maxAbsDiff(got, want) < 1e-4);
    assert.throws(() => adapter.merge(), /tied to the LM head .*ensure_weight_tying is false/);
    assert.throws(() => adapter.mergeAndUnload(), /cannot merge and unload/);
    assert.equal(emb.merged, false);
    const dir = freshDir();
    adapter.save(dir);
    const other = tinyLlama();
    loadAdapter(other, dir);
    assert.deepEqual(logitsOf(other, IDS), got);
  });

  it('ensure_weight_tying: the adapter applies to the head too, merges exactly, and writes the tied lm_head keys', () => {
    const model = tinyLlama();
    const table = model.model.embed_tokens.weight.toArray();
    const adapter = applyLora(model, {
      r: 2,
      loraAlpha: 4,
      targetModules: ['embed_tokens'],
      ensureWeightTying: true,
    });
    perturb(adapter, 9);
    const got = logitsOf(model, IDS);
    const emb = model.model.embed_tokens as unknown as LoraEmbedding;
    const d = transposePlain(
      matmulPlain(emb.lora_embedding_B.toArray(), emb.lora_embedding_A.toArray(), D, 2, V),
      D,
      V,
    );
    const expect = tinyLlama();
    setParam(
      expect,
      'model.embed_tokens.weight',
      table.map((w, i) => w + 2 * d[i]!),
    );
    assert.ok(maxAbsDiff(got, logitsOf(expect, IDS)) < 1e-4, 'E + s (B A)^T in both roles');
    const dir = freshDir();
    adapter.save(dir);
    const json = JSON.parse(readFileSync(join(dir, ADAPTER_CONFIG_FILE), 'utf8'));
    assert.equal(json.ensure_weight_tying, true);
    const reader = openSafetensors(join(dir, ADAPTER_WEIGHTS_FILE));
    try {
      // PEFT's tied lm_head adapter: lora_A = lora_embedding_B^T, lora_B = lora_embedding_A^T
      assert.deepEqual(
        Array.from(reader.read(HEAD_A).data as Float32Array),
        Array.from(Float32Array.from(transposePlain(emb.lora_embedding_B.toArray(), D, 2))),
      );
      assert.deepEqual(reader.info(HEAD_B).shape, [V, 2]);
    } finally {
      reader.close();
    }
    const other = tinyLlama();
    loadAdapter(other, dir);
    assert.deepEqual(logitsOf(other, IDS), got);
    adapter.merge();
    assert.ok(maxAbsDiff(logitsOf(model, IDS), got) < 1e-4);
    const plain = adapter.mergeAndUnload();
    assert.ok(maxAbsDiff(logitsOf(plain as LlamaForCausalLM, IDS), got) < 1e-4);
  });

  it('ensure_weight_tying: finite-difference gradient through the tied head and the lookup', () => {
    const model = tinyLlama({ dtype: 'f64' });
    const adapter = applyLora(model, { r: 2, targetModules: ['embed_tokens'], ensureWeightTying: true });
    perturb(adapter, 12, 0.3);
    const emb = model.model.embed_tokens as unknown as LoraEmbedding;
    const ids = fromArray(Int32Array.from(IDS), [1, IDS.length], { dtype: 'i32' });
    const labels = fromArray(Int32Array.from([-100, ...IDS.slice(1)]), [1, IDS.length], { dtype: 'i32' });
    gradCheck(
      'tied lora embedding',
      () => scoreNextTokens(model, ids, labels).result.logp,
      [emb.lora_embedding_A, emb.lora_embedding_B],
      { tol: 1e-5 },
    );
  });

  it('modules_to_save of the tied table: input side only by default (head keeps the original), both with ensure_weight_tying', () => {
    const model = tinyLlama();
    const original = model.model.embed_tokens.weight;
    const adapter = applyLora(model, { r: 2, targetModules: ['q_proj'], modulesToSave: ['embed_tokens'] });
    const copy = model.model.embed_tokens.weight;
    assert.notEqual(copy, original);
    const rng = new Rng(1);
    copy.fillWith((i) => copy.toArray()[i]! + 0.3 * rng.normal());
    const hidden = noGrad(() =>
      scope(() =>
        Array.from(
          model.forwardHidden(fromArray(Int32Array.from(IDS), [1, IDS.length], { dtype: 'i32' })).data,
        ),
      ),
    );
    const headOriginal = matmulPlain(hidden, transposePlain(original.toArray(), V, D), IDS.length, D, V);
    assert.ok(maxAbsDiff(logitsOf(model, IDS), headOriginal) < 1e-4);
    assert.throws(() => adapter.mergeAndUnload(), /cannot merge and unload/);
    adapter.unload();
    assert.equal(model.model.embed_tokens.weight, original);

    const tied = tinyLlama();
    const a2 = applyLora(tied, {
      r: 2,
      targetModules: ['q_proj'],
      modulesToSave: ['embed_tokens'],
      ensureWeightTying: true,
    });
    const c2 = tied.model.embed_tokens.weight;
    c2.fillWith((i) => c2.toArray()[i]! + 0.3 * rng.normal());
    const h2 = noGrad(() =>
      scope(() =>
        Array.from(
          tied.forwardHidden(fromArray(Int32Array.from(IDS), [1, IDS.length], { dtype: 'i32' })).data,
        ),
      ),
    );
    const headCopy = matmulPlain(h2, transposePlain(c2.toArray(), V, D), IDS.length, D, V);
    assert.ok(maxAbsDiff(logitsOf(tied, IDS), headCopy) < 1e-4);
    const dir = freshDir();
    a2.save(dir);
    const reader = openSafetensors(join(dir, ADAPTER_WEIGHTS_FILE));
    try {
      assert.ok(reader.has('base_model.model.model.embed_tokens.weight'));
      assert.ok(reader.has('base_model.model.lm_head.weight'), "PEFT's tied lm_head copy");
    } finally {
      reader.close();
    }
    const other = tinyLlama();
    loadAdapter(other, dir);
    assert.deepEqual(logitsOf(other, IDS), logitsOf(tied, IDS));
    const merged = a2.mergeAndUnload() as LlamaForCausalLM;
    assert.ok(maxAbsDiff(logitsOf(merged, IDS), headCopy) < 1e-4);
  });
});
