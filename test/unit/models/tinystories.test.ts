import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { generate, type LlamaForCausalLM, loadModel, scoreIds } from '../../../src/models/index.ts';
import { testModelDir } from '../../helpers/models-env.ts';

const model = testModelDir('tinystories-656k');

interface Fixture {
  scoring: { text: string; ids: number[]; logprobs: number[]; entropies: number[] }[];
  greedy: { prompt: string; prompt_ids: number[]; generated_ids: number[] };
}

describe('real checkpoint: tinystories-656k (written by transformers)', { skip: model.skip }, () => {
  // shared/fixtures sits beside shared/models
  const fixturePath = join(dirname(model.dir ?? '.'), '..', 'fixtures', 'tinystories-656k.json');
  const fixture = JSON.parse(readFileSync(fixturePath, 'utf8')) as Fixture;
  const loaded = loadModel(model.dir!);
  it('loads the tied embedding stored only as lm_head.weight (safetensors metadata alias)', () => {
    assert.equal(loaded.config.tieWordEmbeddings, true);
    const llama = loaded.model as LlamaForCausalLM;
    assert.equal(llama.lm_head, null);
    const w = llama.model.embed_tokens.weight.data as Float32Array;
    assert.ok(
      w.some((v) => v !== 0),
      'embedding was loaded',
    );
  });
  it('tokenizes exactly like the Rust tokenizers library (BOS added)', () => {
    for (const s of fixture.scoring) assert.deepEqual(loaded.tokenizer!.encode(s.text), s.ids, s.text);
    assert.deepEqual(loaded.tokenizer!.encode(fixture.greedy.prompt), fixture.greedy.prompt_ids);
  });
  it('scores per-token log-probs and entropies within 1e-4 of the float64 reference', () => {
    for (const s of fixture.scoring) {
      const r = scoreIds(loaded.model, s.ids);
      assert.equal(r.tokens[0]!.logprob, null);
      s.logprobs.forEach((lp, i) => {
        assert.ok(
          Math.abs(r.tokens[i + 1]!.logprob! - lp) < 1e-4,
          `${s.text} token ${i + 1}: ${r.tokens[i + 1]!.logprob} vs ${lp}`,
        );
        assert.ok(Math.abs(r.tokens[i + 1]!.entropy! - s.entropies[i]!) < 1e-4, `${s.text} entropy ${i + 1}`);
      });
    }
  });
  it('generates the same 20 greedy tokens', () => {
    const g = generate(loaded.model, fixture.greedy.prompt_ids, { maxNewTokens: 20, temperature: 0 });
    assert.deepEqual(g.generatedIds, fixture.greedy.generated_ids);
  });
  it('stops at EOS when asked, and decodes story text', () => {
    const g = generate(loaded.model, fixture.greedy.prompt_ids, {
      maxNewTokens: 20,
      eosTokenIds: loaded.eosTokenIds,
      tokenizer: loaded.tokenizer,
    });
    assert.equal(g.stopReason, 'eos');
    assert.deepEqual(g.generatedIds, fixture.greedy.generated_ids.slice(0, 5));
    assert.ok(g.text && g.text.length > 0);
  });
});
