/**
 * Multi-LoRA serving of adapters beyond Linear name lists: a regex target_modules (PEFT's
 * full-match string, with a rank_pattern), a LoRA of the (tied) embedding with and without ensure_weight_tying, and a
 * head-only 'lm_head' LoRA over the tied table. Each row's tokens and log-probs equal generate on a
 * model with that adapter loaded by the lora tuner, alone and in a mixed batch; the variants serve
 * cannot run are refused naming the file.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { FormatError } from '../../../src/errors.ts';
import { generate, loadModel } from '../../../src/models/index.ts';
import { loadAdapter } from '../../../src/peft/index.ts';
import {
  DecodeEngine,
  installAdapters,
  MultiLoraEmbedding,
  type MultiLoraLinear,
  type SequenceRequest,
  type SequenceResult,
} from '../../../src/serve/index.ts';
import { shippedWorldBaseDir } from '../../../src/world/base.ts';
import { writeRandomAdapters } from '../../helpers/lora-adapters.ts';

const baseDir = shippedWorldBaseDir('small');
const tmp = mkdtempSync(join(tmpdir(), 'attune-serve-targets-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const adapters = writeRandomAdapters(baseDir, tmp, [
  { name: 'regex', seed: 1, targets: '.*\\.(q_proj|down_proj)', std: 0.2, rankPattern: { down_proj: 2 } },
  { name: 'embed', seed: 2, targets: ['embed_tokens', 'v_proj'], r: 2, std: 0.5 },
  { name: 'tied', seed: 3, targets: ['embed_tokens'], ensureWeightTying: true, std: 0.5 },
  { name: 'head', seed: 4, targets: ['lm_head'], std: 0.5 },
]);

const tokenizer = loadModel(baseDir).tokenizer!;
const prompts = ['Alice was born in', 'The capital of'];
const requests: SequenceRequest[] = prompts.flatMap((p, i) =>
  [-1, 0, 1, 2, 3].map((adapter) => ({
    promptIds: tokenizer.encode(p),
    adapter,
    maxTokens: 6 + i,
    temperature: 0,
    topP: 1,
    seed: 5 + i,
    stop: [],
    topLogprobs: 1,
  })),
);
const summary = (r: SequenceResult) => ({
  ids: r.tokens.map((t) => t.id),
  logprobs: r.tokens.map((t) => t.logprob),
});

function engineOver(maxBatch: number) {
  const loaded = loadModel(baseDir);
  const set = installAdapters(loaded.model, adapters);
  const engine = new DecodeEngine({
    model: loaded.model,
    tokenizer: loaded.tokenizer!,
    router: set.router,
    eosTokenIds: loaded.eosTokenIds,
    maxBatch,
    maxQueue: 64,
  });
  return { loaded, engine, set };
}

describe('serve: regex, embedding and LM-head adapters', () => {
  it('installs per-row layers for what each adapter adapts', () => {
    const { loaded, set } = engineOver(1);
    const modules = Object.fromEntries(set.adapters.map((a) => [a.name, a.modules]));
    assert.equal(modules.regex!.length, 2 * loaded.model.config.numLayers);
    assert.ok(modules.regex!.every((m) => /\.(q_proj|down_proj)$/.test(m)));
    const down = loaded.model.getSubmodule('model.layers.0.mlp.down_proj') as MultiLoraLinear;
    assert.deepEqual(down.deltas.get(0)!.a.shape[0], 2, 'rank_pattern gives down_proj r = 2');
    assert.deepEqual(modules.tied, ['model.embed_tokens', 'lm_head']);
    assert.deepEqual(modules.head, ['lm_head']);
    assert.equal(modules.embed![0], 'model.embed_tokens');
    assert.ok(loaded.model.getSubmodule('model.embed_tokens') instanceof MultiLoraEmbedding);
    assert.ok(loaded.model.lmHeadOverride !== null);
  });

  it('each row gives what generate gives with that adapter loaded by the lora tuner', async () => {
    const { engine } = engineOver(1);
    for (const request of requests) {
      const got = await engine.submit(request).result;
      const reference = loadModel(baseDir);
      if (request.adapter >= 0) loadAdapter(reference.model, adapters[request.adapter]!.dir);
      const want = generate(reference.model, request.promptIds, {
        maxNewTokens: request.maxTokens,
        eosTokenIds: reference.eosTokenIds,
        returnStats: true,
      });
      const label = `adapter ${request.adapter}`;
      assert.deepEqual(
        got.tokens.map((t) => t.id),
        want.generatedIds,
        label,
      );
      got.tokens.forEach((t, i) => {
        assert.ok(Math.abs(t.logprob - want.tokenStats![i]!.logprob) < 1e-4, label);
      });
    }
  });

  it('every adapter changes the log-probs (the test above is not vacuous), and a mixed batch equals each alone', async () => {
    const alone: ReturnType<typeof summary>[] = [];
    const one = engineOver(1).engine;
    for (const r of requests) alone.push(summary(await one.submit(r).result));
    const base = alone[0]!;
    for (let a = 1; a <= 4; a++) {
      const diff = Math.max(...alone[a]!.logprobs.map((lp, i) => Math.abs(lp - (base.logprobs[i] ?? 0))));
      assert.ok(alone[a]!.ids.join() !== base.ids.join() || diff > 1e-3, `adapter ${a - 1} changes nothing`);
    }
    const batched = engineOver(requests.length);
    const together = await Promise.all(requests.map((r) => batched.engine.submit(r).result));
    assert.equal(batched.engine.stats().maxBatchSeen, requests.length);
    assert.deepEqual(together.map(summary), alone, 'bit for bit, as the decode loop promises');
  });

  it('refuses what per-row layers do not compute, naming the file and the field', () => {
    const refused = (field: Record<string, unknown>, name: string, pattern: RegExp) => {
      const [spec] = writeRandomAdapters(baseDir, tmp, [{ name, seed: 9, targets: ['q_proj'] }]);
      const file = join(spec!.dir, 'adapter_config.json');
      writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), ...field }));
      const model = loadModel(baseDir).model;
      assert.throws(
        () => installAdapters(model, [spec!]),
        (e: unknown) => e instanceof FormatError && e.message.includes(file) && pattern.test(e.message),
      );
      assert.equal(model.lmHeadOverride, null);
    };
    refused({ lora_bias: true }, 'bias', /'lora_bias' is true.*attune export --merge/);
    refused({ modules_to_save: ['model.norm'] }, 'mts', /'modules_to_save' is \["model\.norm"\]/);
    refused({ init_lora_weights: 'olora' }, 'olora', /rewritten \(residual\) base/);
    refused({ peft_type: 'IA3' }, 'ia3', /LoRA adapters only, found peft_type "IA3"/);
  });
});
