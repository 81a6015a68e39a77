import assert from 'node:assert/strict';
import { cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigError, TensorMismatchError } from '../../../src/errors.ts';
import { runMerge } from '../../../src/merge/index.ts';
import type { LlamaForCausalLM } from '../../../src/models/index.ts';
import { generate, loadModel, saveModel } from '../../../src/models/index.ts';
import { loadAdapter } from '../../../src/peft/index.ts';
import { cleanup, config, loraAdapter, maxDiff, tempDir, tensorsOf, tinyModel, variant } from './helpers.ts';

after(cleanup);

let root: string;
before(() => {
  root = tempDir();
  tinyModel(join(root, 'base'), { seed: 1 });
  cpSync(join(root, 'base'), join(root, 'base-copy'), { recursive: true });
  variant(join(root, 'base'), join(root, 'ft1'), 11);
  variant(join(root, 'base'), join(root, 'ft2'), 12);
  loraAdapter(join(root, 'base'), join(root, 'lora'), 21);
  // the adapter folded in by `attune export --merge`'s path
  const loaded = loadModel(join(root, 'base'));
  const merged = loadAdapter(loaded.model, join(root, 'lora')).mergeAndUnload() as LlamaForCausalLM;
  saveModel(merged, join(root, 'exported'), { tokenizerFrom: join(root, 'base') });
});

let outCount = 0;
/** Run a config object (paths relative to the shared root) into a fresh output dir. */
function merge(raw: Record<string, unknown>) {
  const out = join(root, `out-${outCount++}`);
  const report = runMerge(config(raw, root), { out });
  return { out, report, tensors: tensorsOf(out) };
}

const changedCount = (out: Float32Array, base: Float32Array, from = 0, to = out.length) => {
  let n = 0;
  for (let j = from; j < to; j++) if (out[j] !== base[j]) n++;
  return n;
};

describe('merge identities', () => {
  it('linear of identical models returns the model', () => {
    const { tensors, report } = merge({
      merge_method: 'linear',
      models: [
        { model: 'base', parameters: { weight: 0.3 } },
        { model: 'base-copy', parameters: { weight: 0.7 } },
      ],
    });
    assert.equal(maxDiff(tensors, tensorsOf(join(root, 'base'))), 0);
    assert.ok(report.peakTensorBytes > 0 && report.peakTensorBytes <= report.boundBytes);
  });

  it('one adapter at weight 1.0 comes back unchanged (linear and task arithmetic)', () => {
    const exported = tensorsOf(join(root, 'exported'));
    const linear = merge({
      merge_method: 'linear',
      models: [{ model: 'base+lora', parameters: { weight: 1 } }],
    });
    assert.equal(maxDiff(linear.tensors, exported), 0);
    const ta = merge({
      merge_method: 'task_arithmetic',
      base_model: 'base',
      models: [{ model: 'base+lora', parameters: { weight: 1.0 } }],
    });
    assert.equal(maxDiff(ta.tensors, exported), 0);
  });

  it('TIES with density 1 and one model equals task arithmetic', () => {
    const ta = merge({
      merge_method: 'task_arithmetic',
      base_model: 'base',
      models: [{ model: 'ft1', parameters: { weight: 1 } }],
    });
    const ties = merge({
      merge_method: 'ties',
      base_model: 'base',
      models: [{ model: 'ft1', parameters: { weight: 1, density: 1 } }],
    });
    assert.equal(maxDiff(ties.tensors, ta.tensors), 0);
    const ta2 = merge({
      merge_method: 'task_arithmetic',
      base_model: 'base',
      models: [{ model: 'ft1', parameters: { weight: 0.5 } }],
    });
    const ties2 = merge({
      merge_method: 'ties',
      base_model: 'base',
      models: [{ model: 'ft1', parameters: { weight: 0.5 } }],
      parameters: { normalize: false },
    });
    assert.equal(maxDiff(ties2.tensors, ta2.tensors), 0);
  });

  it('DARE with density 1 is the identity (dare_linear = task arithmetic, dare_ties = ties)', () => {
    const models = [
      { model: 'ft1', parameters: { weight: 0.6, density: 1 } },
      { model: 'ft2', parameters: { weight: 0.4, density: 1 } },
    ];
    const plain = models.map((m) => ({ model: m.model, parameters: { weight: m.parameters.weight } }));
    const dl = merge({ merge_method: 'dare_linear', base_model: 'base', models });
    const ta = merge({ merge_method: 'task_arithmetic', base_model: 'base', models: plain });
    assert.equal(maxDiff(dl.tensors, ta.tensors), 0);
    const dt = merge({ merge_method: 'dare_ties', base_model: 'base', models });
    const ties = merge({
      merge_method: 'ties',
      base_model: 'base',
      models: plain,
      parameters: { normalize: false },
    });
    assert.equal(maxDiff(dt.tensors, ties.tensors), 0);
  });

  it('slerp returns the base at t = 0 and the other model at t = 1', () => {
    const at0 = merge({
      merge_method: 'slerp',
      base_model: 'base',
      models: [{ model: 'base' }, { model: 'ft1' }],
      parameters: { t: 0 },
    });
    assert.equal(maxDiff(at0.tensors, tensorsOf(join(root, 'base'))), 0);
    const at1 = merge({
      merge_method: 'slerp',
      base_model: 'base',
      models: [{ model: 'ft1' }],
      parameters: { t: 1 },
    });
    assert.equal(maxDiff(at1.tensors, tensorsOf(join(root, 'ft1'))), 0);
    assert.equal(at1.report.lerpFallbacks, 0);
  });

  it('reads per-tensor settings as mergekit does: filters on the tensor name, then the fallback', () => {
    const base = tensorsOf(join(root, 'base'));
    const ft1 = tensorsOf(join(root, 'ft1'));
    const { tensors } = merge({
      merge_method: 'slerp',
      base_model: 'base',
      models: [{ model: 'ft1' }],
      parameters: { t: [{ filter: 'self_attn', value: 0 }, { filter: 'mlp', value: [1, 1] }, { value: 0 }] },
    });
    for (const [name, values] of tensors) {
      const expected = name.includes('.mlp.') ? ft1 : base;
      assert.deepEqual(values, expected.get(name), name);
    }
  });

  it('a base+adapter reference merges exactly like the exported merged model', () => {
    const params = { weight: 0.5, density: 0.5 };
    const a = merge({
      merge_method: 'ties',
      base_model: 'base',
      models: [
        { model: 'ft1', parameters: params },
        { model: 'base+lora', parameters: params },
      ],
    });
    const b = merge({
      merge_method: 'ties',
      base_model: 'base',
      models: [
        { model: 'ft1', parameters: params },
        { model: 'exported', parameters: params },
      ],
    });
    assert.deepEqual(
      readFileSync(join(a.out, 'model.safetensors')),
      readFileSync(join(b.out, 'model.safetensors')),
    );
  });
});

describe('sparsified merges keep exact counts', () => {
  it('breadcrumbs keeps floor(density * n) entries of every tensor, and of every row with scope: row', () => {
    const base = tensorsOf(join(root, 'base'));
    const perTensor = merge({
      merge_method: 'breadcrumbs',
      base_model: 'base',
      models: [{ model: 'ft1', parameters: { weight: 1, density: 0.3, gamma: 0.05 } }],
    });
    for (const [name, out] of perTensor.tensors)
      assert.equal(changedCount(out, base.get(name)!), Math.floor(0.3 * out.length), name);
    const perRow = merge({
      merge_method: 'breadcrumbs',
      base_model: 'base',
      models: [{ model: 'ft1', parameters: { weight: 1, density: 0.25, gamma: 0.1 } }],
      parameters: { scope: 'row' },
    });
    const name = 'model.layers.0.mlp.up_proj.weight';
    const out = perRow.tensors.get(name)!;
    const cols = 32;
    for (let row = 0; row < out.length / cols; row++) {
      assert.equal(changedCount(out, base.get(name)!, row * cols, (row + 1) * cols), Math.floor(0.25 * cols));
    }
  });

  it('TIES with scope: global keeps floor(density * N) entries over the whole model', () => {
    const base = tensorsOf(join(root, 'base'));
    const { tensors, report } = merge({
      merge_method: 'ties',
      base_model: 'base',
      models: [{ model: 'ft1', parameters: { weight: 1, density: 0.3 } }],
      parameters: { scope: 'global' },
    });
    let total = 0;
    let changed = 0;
    for (const [name, out] of tensors) {
      total += out.length;
      changed += changedCount(out, base.get(name)!);
    }
    assert.equal(changed, Math.floor(0.3 * total));
    assert.equal(report.passes, 3);
  });

  it('DARE is reproducible for a seed and changes with it', () => {
    const raw = (seed: number) => ({
      merge_method: 'dare_ties',
      base_model: 'base',
      models: [
        { model: 'ft1', parameters: { weight: 1, density: 0.4 } },
        { model: 'ft2', parameters: { weight: 1, density: 0.4 } },
      ],
      seed,
    });
    const a = merge(raw(3));
    const b = merge(raw(3));
    const c = merge(raw(4));
    assert.equal(maxDiff(a.tensors, b.tensors), 0);
    assert.ok(maxDiff(a.tensors, c.tensors) > 0);
  });
});

describe('merge output and bad inputs', () => {
  it('the merged dir of two fine-tuned models loads with loadModel and generates', () => {
    const { out, report } = merge({
      merge_method: 'ties',
      base_model: 'base',
      models: [
        { model: 'ft1', parameters: { weight: 1, density: 0.5 } },
        { model: 'ft2', parameters: { weight: 1, density: 0.5 } },
      ],
      dtype: 'bfloat16',
    });
    assert.equal(report.tokenizer, true);
    for (const f of [
      'config.json',
      'generation_config.json',
      'tokenizer.json',
      'tokenizer_config.json',
      'model.safetensors',
    ]) {
      assert.ok(existsSync(join(out, f)), f);
    }
    assert.equal(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).torch_dtype, 'bfloat16');
    const loaded = loadModel(out);
    const ids = loaded.tokenizer!.encode('Ada lives in ');
    const result = generate(loaded.model, ids, { maxNewTokens: 5, tokenizer: loaded.tokenizer });
    assert.equal(result.generatedIds.length, 5);
    assert.equal(typeof result.text, 'string');
  });

  it('different architectures fail before anything is written, listing every offending tensor', () => {
    const dir = tempDir();
    tinyModel(join(dir, 'base'), { seed: 1 });
    tinyModel(join(dir, 'wide'), { seed: 2, hidden: 48 });
    tinyModel(join(dir, 'deep'), { seed: 3, layers: 3 });
    const out = join(dir, 'out');
    const run = (model: string) =>
      runMerge(config({ merge_method: 'task_arithmetic', base_model: 'base', models: [{ model }] }, dir), {
        out,
      });
    assert.throws(
      () => run('wide'),
      (e: unknown) => {
        assert.ok(e instanceof TensorMismatchError);
        for (const name of [
          'model.embed_tokens.weight',
          'model.layers.0.mlp.up_proj.weight',
          'model.layers.1.self_attn.o_proj.weight',
          'model.norm.weight',
        ]) {
          assert.match(e.message, new RegExp(`'${name.replaceAll('.', '\\.')}' is \\[`));
        }
        return true;
      },
    );
    assert.throws(
      () => run('deep'),
      /'model\.layers\.2\.mlp\.up_proj\.weight' in deep has no counterpart in base/,
    );
    writeFileSync(
      join(dir, 'wide', 'config.json'),
      JSON.stringify({
        ...JSON.parse(readFileSync(join(dir, 'wide', 'config.json'), 'utf8')),
        model_type: 'qwen2',
      }),
    );
    assert.throws(() => run('wide'), /wide is model_type 'qwen2', base is 'llama'/);
    assert.equal(existsSync(out), false);
    assert.deepEqual(readdirSync(dir).sort(), ['base', 'deep', 'wide']);
  });

  it('an existing output dir needs overwrite; it is replaced only after a successful merge', () => {
    const dir = tempDir();
    const c = config({ merge_method: 'linear', models: [{ model: join(root, 'base') }] }, dir);
    const out = join(dir, 'out');
    runMerge(c, { out });
    writeFileSync(join(out, 'marker'), 'x');
    assert.throws(
      () => runMerge(c, { out }),
      (e: unknown) => e instanceof ConfigError && /already exists/.test(e.message),
    );
    assert.ok(existsSync(join(out, 'marker')));
    runMerge(c, { out, overwrite: true });
    assert.equal(existsSync(join(out, 'marker')), false);
    assert.throws(
      () => runMerge(c, { out: join(root, 'base'), overwrite: true }),
      /is one of the merge's inputs/,
    );
  });

  it('model stock and breadcrumbs_ties run and stay within the streaming bound', () => {
    for (const raw of [
      {
        merge_method: 'model_stock',
        base_model: 'base',
        models: [{ model: 'ft1' }, { model: 'ft2' }],
        parameters: { filter_wise: true },
      },
      {
        merge_method: 'breadcrumbs_ties',
        base_model: 'base',
        models: [
          { model: 'ft1', parameters: { density: 0.5 } },
          { model: 'base+lora', parameters: { density: 0.5 } },
        ],
      },
    ]) {
      const { report } = merge(raw);
      assert.equal(report.inputs, 3);
      assert.ok(
        report.peakTensorBytes <= report.boundBytes,
        `${report.method}: ${report.peakTensorBytes} > ${report.boundBytes}`,
      );
    }
  });
});
