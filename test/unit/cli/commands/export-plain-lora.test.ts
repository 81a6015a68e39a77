/**
 * `attune export --format peft --to-plain-lora`: a PiSSA / OLoRA adapter (its init rewrote the base)
 * becomes PEFT's plain rank-2r LoRA for the original base, giving the adapter's logits there; and
 * the refusals (an adapter that needs no conversion, DoRA, other formats) before anything is written.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Tokenizer } from '../../../../src/io/index.ts';
import { createModel, llamaConfigJson, loadModel, saveModel } from '../../../../src/models/index.ts';
import { ADAPTER_CONFIG_FILE, applyLora, applyTuner, loadAdapter } from '../../../../src/peft/index.ts';
import { byteLevelTokenizer } from '../../io/gguf-helpers.ts';
import { cleanup, tempDir } from '../../io/helpers.ts';
import { logitsOf, maxAbsDiff, randomizeLora, tokens } from '../../peft/helpers.ts';
import { attune } from './helpers.ts';

after(cleanup);

const root = tempDir();
const modelPath = join(root, 'model');
const IDS = tokens(11);
{
  const model = createModel(
    llamaConfigJson({
      vocabSize: 262,
      hiddenSize: 32,
      intermediateSize: 64,
      numLayers: 2,
      numHeads: 4,
      numKvHeads: 2,
    }),
    { seed: 1 },
  );
  const tok = byteLevelTokenizer(262);
  saveModel(model, modelPath, { tokenizer: Tokenizer.fromObjects(tok.json, tok.config) });
}

/** A "trained" adapter with `options` on a fresh copy of the base, saved under `name`. */
function savedAdapter(name: string, options: Parameters<typeof applyLora>[1]): string {
  const model = loadModel(modelPath).model;
  const adapter = applyLora(model, options);
  randomizeLora(model, 4, 0.1);
  const dir = join(root, name);
  adapter.save(dir);
  return dir;
}

/** Logits of the original base with the adapter at `dir` loaded (re-initialised for PiSSA / OLoRA). */
function logitsWith(dir: string): Float64Array {
  const model = loadModel(modelPath).model;
  loadAdapter(model, dir);
  return logitsOf(model, IDS);
}

function exportArgs(adapter: string, out: string, ...flags: string[]): string[] {
  return ['export', '--model', modelPath, '--adapter', adapter, ...flags, '--out', out];
}

describe('attune export --to-plain-lora', () => {
  for (const [init, useRslora] of [
    ['pissa', false],
    ['olora', true],
  ] as const) {
    it(`${init === 'olora' ? 'an' : 'a'} ${init} adapter becomes a plain rank-2r LoRA with the same logits on the original base`, async () => {
      const adapter = savedAdapter(`${init}-adapter`, {
        init,
        r: 3,
        loraAlpha: 6,
        useRslora,
        targetModules: 'all-linear',
      });
      const expected = logitsWith(adapter);
      const base = logitsOf(loadModel(modelPath).model, IDS);
      assert.ok(maxAbsDiff(expected, base) > 1e-3, 'the trained adapter changes the outputs');
      const out = join(tempDir(), 'plain');
      const r = await attune([...exportArgs(adapter, out, '--format', 'peft', '--to-plain-lora'), '--json']);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.json?.convertedFrom, init);
      assert.equal(r.json?.r, 6);
      const json = JSON.parse(readFileSync(join(out, ADAPTER_CONFIG_FILE), 'utf8'));
      assert.equal(json.init_lora_weights, true);
      assert.equal(json.r, 6);
      assert.ok(Math.abs(json.lora_alpha - (useRslora ? 6 * Math.SQRT2 : 12)) < 1e-12, `${json.lora_alpha}`);
      assert.deepEqual(json.rank_pattern, {});
      assert.equal(json.base_model_name_or_path, modelPath);
      // the original base is not rewritten by loading a plain LoRA: its logits with it are the adapter's
      const original = loadModel(modelPath).model;
      const converted = loadAdapter(original, out);
      assert.deepEqual(
        converted.state().get('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight')!.shape,
        [6, 32],
      );
      const diff = maxAbsDiff(logitsOf(original, IDS), expected);
      assert.ok(diff < 1e-5, `${init}: converted LoRA logits differ by ${diff}`);
    });
  }

  it('a CorDA adapter (its triplets saved next to it) converts too, with the same logits on the original base', async () => {
    const calibration = Array.from({ length: 4 }, (_, i) => {
      const ids = Int32Array.from(tokens(7, 100 + i));
      return { inputIds: ids, labels: ids };
    });
    const adapter = savedAdapter('corda-adapter', {
      r: 2,
      loraAlpha: 4,
      targetModules: ['q_proj', 'v_proj'],
      init: 'corda',
      corda: { method: 'kpm', data: null, maxSamples: 16, calibration: () => calibration },
    });
    const expected = logitsWith(adapter);
    const out = join(tempDir(), 'plain');
    const r = await attune(exportArgs(adapter, out, '--format', 'peft', '--to-plain-lora'));
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.stdout.includes("plain LoRA of rank 4 converted from init 'corda'"), r.stdout);
    assert.ok(!existsSync(join(out, 'corda_eigens.safetensors')), 'a plain LoRA needs no triplets');
    const original = loadModel(modelPath).model;
    loadAdapter(original, out);
    const diff = maxAbsDiff(logitsOf(original, IDS), expected);
    assert.ok(diff < 1e-5, `corda: converted LoRA logits differ by ${diff}`);
  });

  it('an existing --out is kept unless --overwrite, which replaces the whole folder', async () => {
    const adapter = savedAdapter('pissa-overwrite', { init: 'pissa', r: 2, targetModules: ['q_proj'] });
    const out = join(tempDir(), 'plain');
    mkdirSync(out);
    writeFileSync(join(out, 'stale.txt'), 'old');
    const refused = await attune(exportArgs(adapter, out, '--format', 'peft', '--to-plain-lora'));
    assert.equal(refused.status, 2);
    assert.ok(refused.stderr.includes('exists (pass --overwrite'), refused.stderr);
    assert.equal(readFileSync(join(out, 'stale.txt'), 'utf8'), 'old');
    const r = await attune(exportArgs(adapter, out, '--format', 'peft', '--to-plain-lora', '--overwrite'));
    assert.equal(r.status, 0, r.stderr);
    assert.ok(!existsSync(join(out, 'stale.txt')));
    assert.equal(JSON.parse(readFileSync(join(out, ADAPTER_CONFIG_FILE), 'utf8')).r, 4);
  });

  it('refuses adapters that need no conversion or cannot have one, naming their init; nothing is written', async () => {
    const cases: [string, Parameters<typeof applyLora>[1], string][] = [
      [
        'plain',
        { r: 2, targetModules: ['q_proj'] },
        'needs no conversion: its init (init_lora_weights true) leaves the base as it is',
      ],
      [
        'gaussian',
        { r: 2, init: 'gaussian', targetModules: ['q_proj'] },
        'needs no conversion: its init (init_lora_weights "gaussian")',
      ],
      [
        'dora',
        { r: 2, useDora: true, targetModules: ['q_proj'] },
        'needs no conversion: its init (init_lora_weights true, DoRA)',
      ],
      [
        'dora-pissa',
        { r: 2, useDora: true, init: 'pissa', targetModules: ['q_proj'] },
        'cannot convert the DoRA adapter',
      ],
      ['kasa', { r: 2, kasa: {}, targetModules: ['q_proj'] }, 'is not defined for the KaSA adapter'],
    ];
    for (const [name, options, message] of cases) {
      const adapter = savedAdapter(`refused-${name}`, options);
      const out = join(root, `never-${name}`);
      const r = await attune(exportArgs(adapter, out, '--format', 'peft', '--to-plain-lora'));
      assert.equal(r.status, 2, name);
      assert.ok(r.stderr.includes(message), `${name}: ${r.stderr}`);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, `${name}: one line`);
      assert.ok(!existsSync(out), name);
    }
    const fullDir = join(root, 'refused-full');
    applyTuner(loadModel(modelPath).model, 'full').save(fullDir);
    const out = join(root, 'never-full');
    const r = await attune(exportArgs(fullDir, out, '--format', 'peft', '--to-plain-lora'));
    assert.equal(r.status, 2);
    assert.ok(r.stderr.includes("is a 'full' adapter"), r.stderr);
    assert.ok(!existsSync(out));
  });

  it('refuses --to-plain-lora with formats other than peft, before loading anything', async () => {
    const absent = join(root, 'absent');
    for (const flags of [['--format', 'gguf'], ['--format', 'safetensors'], ['--merge']]) {
      const out = join(root, 'never-format');
      const r = await attune([
        'export',
        '--model',
        absent,
        '--adapter',
        absent,
        ...flags,
        '--to-plain-lora',
        '--out',
        out,
      ]);
      assert.equal(r.status, 2, flags.join(' '));
      assert.ok(r.stderr.includes('--to-plain-lora applies to --format peft only'), r.stderr);
      assert.ok(!existsSync(out));
    }
  });
});
