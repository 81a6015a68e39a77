/**
 * `attune serve` with a weak-to-strong fusion (--strong / --weak-base / --weak-tuned): a served
 * completion is what `attune generate` decodes with the same fusion settings (greedy and seeded
 * sampling, alone or batched), and bad combinations or vocabularies are clear errors.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadRunnableFromFlags } from '../../../src/cli/model-options.ts';
import { UsageError } from '../../../src/errors.ts';
import { createModel, llamaConfigJson, loadModel, saveModel } from '../../../src/models/index.ts';
import { applyLora } from '../../../src/peft/index.ts';
import { startServer } from '../../../src/serve/index.ts';
import { tempDir, writeTinyModel } from '../../helpers/tiny-run.ts';
import { attune } from '../cli/commands/helpers.ts';
import { randomizeLora } from '../peft/helpers.ts';

const root = tempDir('attune-serve-fusion-');
after(() => rmSync(root, { recursive: true, force: true }));
const strong = writeTinyModel(join(root, 'strong'), { seed: 1, hidden: 48 });
const base = writeTinyModel(join(root, 'base'), { seed: 2 });
// the tuned expert is the base with a (random) LoRA adapter: DIR:ADAPTER as on the command line
const adapterDir = join(root, 'expert');
{
  const model = loadModel(base).model;
  const adapter = applyLora(model, { r: 4, loraAlpha: 8 });
  randomizeLora(model, 5, 0.4);
  adapter.save(adapterDir);
}
const tuned = `${base}:${adapterDir}`;
const fusionFlags = ['--strong', strong, '--weak-base', base, '--weak-tuned', tuned];

/** A server over the fusion the CLI builds from `fusionFlags` (with `weights`). */
async function fusedServer(weights = 'dynamic') {
  const fused = loadRunnableFromFlags(
    {
      dtype: 'f32',
      strong,
      'weak-base': [base],
      'weak-tuned': [tuned],
      'fusion-weights': weights,
    },
    'serve',
  );
  return startServer({
    model: { model: fused.model, tokenizer: fused.tokenizer, eosTokenIds: fused.eosTokenIds, dir: fused.dir },
    port: 0,
    modelName: 'fused',
  });
}

/** The parts of a completions response the tests read. */
interface CompletionBody {
  choices: { text: string; attune: { confidence: number } }[];
  usage: { completion_tokens: number };
}

async function complete(url: string, body: Record<string, unknown>): Promise<CompletionBody> {
  const r = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'fused', ...body }),
  });
  const json = (await r.json()) as CompletionBody;
  assert.equal(r.status, 200, JSON.stringify(json));
  return json;
}

describe('attune serve --strong', () => {
  it('a served completion equals generate with the same fusion (greedy and seeded; alone and batched)', async () => {
    const server = await fusedServer();
    try {
      const cases = [
        { prompt: 'ab', temperature: 0, seed: 0 },
        { prompt: 'The cat', temperature: 0.9, seed: 11 },
        { prompt: 'xyz', temperature: 1.3, seed: 4 },
      ];
      const wanted: Record<string, unknown>[] = [];
      for (const c of cases) {
        const g = await attune([
          'generate',
          ...fusionFlags,
          '--prompt',
          c.prompt,
          '--max-new-tokens',
          '8',
          '--temperature',
          String(c.temperature),
          '--seed',
          String(c.seed),
          '--json',
        ]);
        assert.equal(g.status, 0, g.stderr);
        wanted.push(g.json!);
      }
      // all three at once: decoded together in one batch
      const got = await Promise.all(
        cases.map((c) =>
          complete(server.url, { prompt: c.prompt, max_tokens: 8, temperature: c.temperature, seed: c.seed }),
        ),
      );
      got.forEach((body, i) => {
        const want = wanted[i]!;
        const choice = body.choices[0];
        // not vacuous: the answers are several tokens long
        assert.ok((want.generated_ids as number[]).length >= 4, `case ${i}: ${JSON.stringify(want)}`);
        assert.equal(choice.text, want.text, `case ${i}`);
        assert.equal(body.usage.completion_tokens, (want.generated_ids as number[]).length, `case ${i}`);
        assert.ok(Math.abs(choice.attune.confidence - (want.confidence as number)) < 1e-4, `case ${i}`);
      });
      // and alone (no batch)
      const alone = await complete(server.url, {
        prompt: 'The cat',
        max_tokens: 8,
        temperature: 0.9,
        seed: 11,
      });
      assert.equal(alone.choices[0].text, wanted[1]!.text);
    } finally {
      await server.close();
    }
  });

  it('the fusion steers the answer: fixed weight 0 serves the strong model, weight 1 another text', async () => {
    const strongAlone = await attune([
      'generate',
      '--model',
      strong,
      '--prompt',
      'ab',
      '--max-new-tokens',
      '8',
    ]);
    const zero = await fusedServer('0');
    const one = await fusedServer('1');
    try {
      const a = await complete(zero.url, { prompt: 'ab', max_tokens: 8, temperature: 0 });
      const b = await complete(one.url, { prompt: 'ab', max_tokens: 8, temperature: 0 });
      assert.equal(a.choices[0].text, strongAlone.stdout.replace(/\n$/, ''));
      assert.notEqual(b.choices[0].text, a.choices[0].text);
    } finally {
      await zero.close();
      await one.close();
    }
  });

  it('bad combinations and mismatched vocabularies are one-line errors', async () => {
    const other = join(root, 'other-vocab');
    saveModel(
      createModel(
        llamaConfigJson({
          vocabSize: 300,
          hiddenSize: 32,
          intermediateSize: 64,
          numLayers: 1,
          numHeads: 4,
          numKvHeads: 2,
        }),
        { seed: 4 },
      ),
      other,
    );
    const cases: [string[], RegExp][] = [
      [
        ['--strong', strong, '--weak-base', base, '--weak-tuned', other],
        /must share one vocabulary: vocab_size 259 vs 300/,
      ],
      [[...fusionFlags, '--model', strong], /--strong replaces --model/],
      [[...fusionFlags, '--adapter', `a=${adapterDir}`], /--adapter .* fusion/],
      [['--strong', strong, '--weak-base', base], /at least one --weak-tuned/],
      [[], /--model <dir> is required/],
    ];
    for (const [flags, message] of cases) {
      const r = await attune(['serve', ...flags, '--port', '0']);
      assert.notEqual(r.status, 0, flags.join(' '));
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
    }
    // the server API refuses adapters and a calibrator with a built model
    const fused = loadModel(strong);
    const model = {
      model: fused.model,
      tokenizer: fused.tokenizer,
      eosTokenIds: fused.eosTokenIds,
      dir: strong,
    };
    await assert.rejects(
      startServer({ model, port: 0, adapters: [{ name: 'a', dir: adapterDir }] }),
      (e: unknown) => e instanceof UsageError && /does not apply to a fusion/.test((e as Error).message),
    );
    await assert.rejects(startServer({ port: 0 }), /exactly one of a model directory and a built model/);
  });
});
