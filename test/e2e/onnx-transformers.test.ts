// attune export --format onnx, consumed by the tools web developers run: transformers.js
// (@huggingface/transformers, offline) generates the same greedy text from the exported folder as
// `attune generate`, with and without a LoRA adapter merged in.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AutoModelForCausalLM, AutoTokenizer, env } from '@huggingface/transformers';
import { exportOnnx, loadModel } from '../../src/models/index.ts';
import { train } from '../../src/train/trainer.ts';
import { testModelDir } from '../helpers/models-env.ts';
import { FACTS, tinyConfig, writeJsonl } from '../helpers/tiny-run.ts';

const bin = fileURLToPath(new URL('../../bin/attune.js', import.meta.url));
const model = testModelDir('tinystories-656k');
const root = mkdtempSync(join(tmpdir(), 'attune-onnx-e2e-'));
after(() => rmSync(root, { recursive: true, force: true }));

function attuneJson(args: string[]): Record<string, unknown> {
  const res = spawnSync(process.execPath, [bin, ...args, '--json'], { encoding: 'utf8', timeout: 300_000 });
  assert.equal(res.status, 0, res.stderr);
  return JSON.parse(res.stdout.trimEnd().split('\n').at(-1)!) as Record<string, unknown>;
}

/** Greedy ids transformers.js generates from the exported folder `dir` (offline). */
async function transformersGreedy(dir: string, prompt: string, n: number): Promise<number[]> {
  env.allowRemoteModels = false;
  env.localModelPath = root;
  const name = dir.slice(root.length + 1);
  const tokenizer = await AutoTokenizer.from_pretrained(name);
  const lm = await AutoModelForCausalLM.from_pretrained(name, { dtype: 'fp32' });
  try {
    const inputs = tokenizer(prompt);
    const out = await lm.generate({ ...inputs, max_new_tokens: n, do_sample: false });
    return ((out as { tolist(): bigint[][] }).tolist()[0] ?? []).map(Number);
  } finally {
    await lm.dispose();
  }
}

describe('export --format onnx -> transformers.js', () => {
  it('generates the same greedy tokens as attune generate, base model and with a merged LoRA', async (t) => {
    if (model.dir === null) return t.skip(model.skip);
    const prompt = 'Once upon a time';
    const base = join(root, 'base-web');
    attuneJson(['export', '--model', model.dir, '--format', 'onnx', '--out', base]);
    const ours = attuneJson(['generate', '--model', model.dir, '--prompt', prompt, '--max-new-tokens', '16']);
    const expected = [...(ours.prompt_ids as number[]), ...(ours.generated_ids as number[])];
    assert.deepEqual(await transformersGreedy(base, prompt, 16), expected);

    // a LoRA adapter that changes the greedy continuation, merged into the export
    writeJsonl(join(root, 'train.jsonl'), FACTS);
    const config = tinyConfig(root, {
      model: model.dir,
      train: { steps: 30, lr: 3e-2 },
      lora: { r: 4, lora_alpha: 16, target_modules: ['q_proj', 'v_proj', 'o_proj'] },
    });
    const adapterDir = train(config, { overwrite: true }).adapterDir;
    const tuned = join(root, 'tuned-web');
    const summary = attuneJson([
      'export',
      '--model',
      model.dir,
      '--adapter',
      adapterDir,
      '--format',
      'onnx',
      '--out',
      tuned,
    ]);
    assert.equal(summary.merged, true);
    const factPrompt = FACTS[0]!.prompt;
    const withAdapter = attuneJson([
      'generate',
      '--model',
      model.dir,
      '--adapter',
      adapterDir,
      '--prompt',
      factPrompt,
      '--max-new-tokens',
      '8',
    ]);
    const plain = attuneJson([
      'generate',
      '--model',
      model.dir,
      '--prompt',
      factPrompt,
      '--max-new-tokens',
      '8',
    ]);
    assert.notDeepEqual(withAdapter.generated_ids, plain.generated_ids, 'the adapter changes the answer');
    assert.deepEqual(await transformersGreedy(tuned, factPrompt, 8), [
      ...(withAdapter.prompt_ids as number[]),
      ...(withAdapter.generated_ids as number[]),
    ]);
  });

  it('loads the weights from ONNX external data (model.onnx_data) and generates the same tokens', async (t) => {
    if (model.dir === null) return t.skip(model.skip);
    const out = join(root, 'external-web');
    const summary = exportOnnx(loadModel(model.dir).model, out, {
      tokenizerFrom: model.dir,
      externalData: true,
    });
    assert.equal(summary.externalData.length, 1);
    const prompt = 'Once upon a time';
    const ours = attuneJson(['generate', '--model', model.dir, '--prompt', prompt, '--max-new-tokens', '16']);
    assert.deepEqual(await transformersGreedy(out, prompt, 16), [
      ...(ours.prompt_ids as number[]),
      ...(ours.generated_ids as number[]),
    ]);
  });

  it('GPT-2 (the real GPT-2 tokenizer): the same greedy tokens as attune generate', async (t) => {
    const gpt2 = testModelDir('tiny-gpt2-random');
    if (gpt2.dir === null) return t.skip(gpt2.skip);
    const out = join(root, 'gpt2-web');
    attuneJson(['export', '--model', gpt2.dir, '--format', 'onnx', '--out', out]);
    const prompt = 'Hello, my name is';
    const ours = attuneJson(['generate', '--model', gpt2.dir, '--prompt', prompt, '--max-new-tokens', '12']);
    assert.deepEqual(await transformersGreedy(out, prompt, 12), [
      ...(ours.prompt_ids as number[]),
      ...(ours.generated_ids as number[]),
    ]);
  });
});
