/**
 * Batched generation: a batch of sequences (ragged prompts, several samples of one prompt,
 * per-sequence stops) gives each sequence exactly what `generate` gives it alone with the same
 * seed, on tiny random Llama (grouped-query attention) and GPT-2 models and on tinystories-656k.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type BatchSequence,
  type CausalLM,
  createModel,
  type GenerateResult,
  generate,
  generateBatch,
  gpt2ConfigJson,
  llamaConfigJson,
  loadModel,
} from '../../../src/models/index.ts';
import { testModelDir } from '../../helpers/models-env.ts';

// a wide initialisation makes the logits peaked, so greedy choices are far from ties
const llama = createModel(
  {
    ...llamaConfigJson({
      vocabSize: 48,
      hiddenSize: 16,
      intermediateSize: 24,
      numLayers: 2,
      numHeads: 4,
      numKvHeads: 2,
    }),
    initializer_range: 0.6,
  },
  { seed: 11 },
);
const gpt2 = createModel(
  { ...gpt2ConfigJson({ vocabSize: 40, hiddenSize: 16, numLayers: 2, numHeads: 2 }), initializer_range: 0.6 },
  { seed: 12 },
);

function alone(
  model: CausalLM,
  s: BatchSequence,
  options: Parameters<typeof generateBatch>[2],
): GenerateResult {
  return generate(model, s.promptIds, { ...options, seed: s.seed });
}

function assertSame(batch: GenerateResult[], single: GenerateResult[]): void {
  assert.equal(batch.length, single.length);
  batch.forEach((b, i) => {
    assert.deepEqual(b.generatedIds, single[i]!.generatedIds, `sequence ${i}`);
    assert.equal(b.stopReason, single[i]!.stopReason, `sequence ${i}`);
    b.tokenStats?.forEach((t, j) => {
      assert.ok(Math.abs(t.logprob - single[i]!.tokenStats![j]!.logprob) < 1e-5, `sequence ${i} token ${j}`);
    });
  });
}

const ragged: BatchSequence[] = [
  { promptIds: [1, 5, 9], seed: 1 },
  { promptIds: [2], seed: 2 },
  { promptIds: [3, 4, 5, 6, 7, 8, 9], seed: 3 },
  { promptIds: [1, 5, 9], seed: 4 },
];

for (const [name, model] of [
  ['llama', llama],
  ['gpt2', gpt2],
] as const) {
  describe(`generateBatch on a tiny random ${name}`, () => {
    it('greedy: every sequence of a ragged batch equals its greedy answer alone', () => {
      const options = { maxNewTokens: 12, returnStats: true };
      const batch = generateBatch(model, ragged, options);
      assertSame(
        batch,
        ragged.map((s) => alone(model, s, options)),
      );
      // greedy ignores the seed: the two copies of the first prompt agree
      assert.deepEqual(batch[0]!.generatedIds, batch[3]!.generatedIds);
      assert.equal(batch[0]!.generatedIds.length, 12);
    });
    it('sampled: per-sequence seeds give the same samples as alone, whatever shares the batch', () => {
      const options = { maxNewTokens: 10, temperature: 1.5, returnStats: true };
      const samples: BatchSequence[] = Array.from({ length: 6 }, (_, i) => ({
        promptIds: [4, 2, 7],
        seed: 100 + i,
      }));
      const batch = generateBatch(model, samples, options);
      assertSame(
        batch,
        samples.map((s) => alone(model, s, options)),
      );
      const distinct = new Set(batch.map((b) => b.generatedIds.join(',')));
      assert.ok(distinct.size > 1, 'different seeds draw different samples');
      // the same sequence in another batch (other companions, another row) draws the same tokens
      const other = generateBatch(model, [ragged[2]!, samples[3]!], options);
      assert.deepEqual(other[1]!.generatedIds, batch[3]!.generatedIds);
    });
    it('stops each sequence on its own EOS while the others continue', () => {
      const options = { maxNewTokens: 16, temperature: 2, topK: 8 };
      const probe = generateBatch(model, ragged, options);
      // make a token the first sequence emits the EOS: it stops there, the others follow their own stops
      const eosTokenIds = [probe[0]!.generatedIds[3]!];
      const batch = generateBatch(model, ragged, { ...options, eosTokenIds });
      assert.equal(batch[0]!.stopReason, 'eos');
      assert.ok(batch[0]!.generatedIds.length <= 4);
      assertSame(
        batch,
        ragged.map((s) => alone(model, s, { ...options, eosTokenIds })),
      );
      assert.ok(batch.some((b) => b.generatedIds.length > batch[0]!.generatedIds.length));
    });
  });
}

it('generateBatch rejects an empty prompt by its index', () => {
  assert.throws(
    () => generateBatch(llama, [{ promptIds: [1] }, { promptIds: [] }]),
    /sequence 1 has no tokens/,
  );
});

const tinystories = testModelDir('tinystories-656k');
describe('generateBatch on tinystories-656k', { skip: tinystories.skip }, () => {
  it('greedy and seeded samples of a batch equal the answers one by one', () => {
    const loaded = loadModel(tinystories.dir!);
    const tok = loaded.tokenizer!;
    const prompts = ['Once upon a time', 'The little dog', 'Lily went to the park and'];
    const base = { maxNewTokens: 16, eosTokenIds: tok.eosTokenIds, tokenizer: tok, returnStats: true };
    const greedy: BatchSequence[] = prompts.map((p) => ({ promptIds: tok.encode(p) }));
    const g = generateBatch(loaded.model, greedy, base);
    assertSame(
      g,
      greedy.map((s) => alone(loaded.model, s, base)),
    );
    for (const [i, r] of g.entries()) assert.equal(r.text, alone(loaded.model, greedy[i]!, base).text);
    const sampled: BatchSequence[] = [0, 1, 2, 3].map((i) => ({
      promptIds: tok.encode(prompts[0]!),
      seed: i,
    }));
    const options = { ...base, temperature: 1 };
    assertSame(
      generateBatch(loaded.model, sampled, options),
      sampled.map((s) => alone(loaded.model, s, options)),
    );
  });
});
