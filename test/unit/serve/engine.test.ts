/**
 * The serve decode loop: per-row adapters give what the lora tuner gives (generate on a model with
 * that adapter loaded), batching changes no sequence's tokens or log-probs (greedy and seeded
 * sampling, across adapters and prompt lengths), the queue bound, draining, and the helpers.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { generate, loadModel } from '../../../src/models/index.ts';
import { loadAdapter } from '../../../src/peft/index.ts';
import {
  DecodeEngine,
  DrainingError,
  installAdapters,
  QueueFullError,
  type SequenceRequest,
  type SequenceResult,
  topLogprobs,
  withheld,
} from '../../../src/serve/index.ts';
import { shippedWorldBaseDir } from '../../../src/world/base.ts';
import { writeRandomAdapters } from '../../helpers/lora-adapters.ts';

const baseDir = shippedWorldBaseDir('small');
const tmp = mkdtempSync(join(tmpdir(), 'attune-serve-engine-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const adapters = writeRandomAdapters(baseDir, tmp, [
  { name: 'qv', seed: 1, targets: ['q_proj', 'v_proj'] },
  { name: 'mlp', seed: 2, targets: ['o_proj', 'down_proj', 'v_proj'], r: 2 },
]);

function engineOver(maxBatch: number, maxQueue = 64) {
  const loaded = loadModel(baseDir);
  const set = installAdapters(loaded.model, adapters);
  const engine = new DecodeEngine({
    model: loaded.model,
    tokenizer: loaded.tokenizer!,
    router: set.router,
    eosTokenIds: loaded.eosTokenIds,
    maxBatch,
    maxQueue,
  });
  return { loaded, engine, set };
}

const tokenizer = loadModel(baseDir).tokenizer!;
const prompts = ['Alice was born in', 'The capital of', 'He works as a teacher in the city of'];
const requests: SequenceRequest[] = prompts.flatMap((p, i) =>
  [-1, 0, 1].map((adapter) => ({
    promptIds: tokenizer.encode(p),
    adapter,
    maxTokens: 10 + i,
    temperature: adapter === 1 && i === 1 ? 0.9 : 0,
    topP: 1,
    seed: 7 + i,
    stop: [],
    topLogprobs: 2,
  })),
);
const summary = (r: SequenceResult) => ({
  ids: r.tokens.map((t) => t.id),
  logprobs: r.tokens.map((t) => t.logprob),
  top: r.tokens.map((t) => t.top),
  text: r.text,
  stop: r.stopReason,
});

describe('serve decode loop', () => {
  it('routes each row to its adapter as the lora tuner applies it', async () => {
    const { engine } = engineOver(1);
    await Promise.all(
      requests
        .filter((r) => r.temperature === 0)
        .map(async (request) => {
          const got = await engine.submit(request).result;
          const reference = loadModel(baseDir);
          if (request.adapter >= 0) loadAdapter(reference.model, adapters[request.adapter]!.dir);
          const want = generate(reference.model, request.promptIds, {
            maxNewTokens: request.maxTokens,
            eosTokenIds: reference.eosTokenIds,
            returnStats: true,
          });
          assert.deepEqual(
            got.tokens.map((t) => t.id),
            want.generatedIds,
          );
          got.tokens.forEach((t, i) => {
            assert.ok(Math.abs(t.logprob - want.tokenStats![i]!.logprob) < 1e-4);
          });
        }),
    );
  });

  it('adapters change the answers (the test above is not vacuous)', async () => {
    const { engine } = engineOver(4);
    const [base, qv, mlp] = await Promise.all(
      [-1, 0, 1].map((adapter) => engine.submit({ ...requests[0]!, adapter, temperature: 0 }).result),
    );
    assert.notDeepEqual(summary(base!).ids, summary(qv!).ids);
    assert.notDeepEqual(summary(base!).ids, summary(mlp!).ids);
  });

  it('gives every sequence the same tokens and log-probs alone as in a batch', async () => {
    const alone: ReturnType<typeof summary>[] = [];
    const one = engineOver(1).engine;
    for (const r of requests) alone.push(summary(await one.submit(r).result));
    const batched = engineOver(requests.length);
    const together = await Promise.all(requests.map((r) => batched.engine.submit(r).result));
    assert.equal(batched.engine.stats().maxBatchSeen, requests.length);
    assert.deepEqual(together.map(summary), alone);
  });

  it('refuses a sequence beyond the free slots plus --max-queue, and drains', async () => {
    const { engine } = engineOver(1, 1);
    const first = engine.submit(requests[0]!);
    const second = engine.submit(requests[1]!);
    assert.throws(() => engine.submit(requests[2]!), QueueFullError);
    const drained = engine.drain();
    assert.throws(() => engine.submit(requests[2]!), DrainingError);
    await drained;
    assert.equal((await first.result).tokens.length > 0, true);
    assert.equal((await second.result).tokens.length > 0, true);
    assert.deepEqual(engine.stats().running + engine.stats().waiting, 0);
  });

  it('cancels a sequence (its slot is freed, its result says cancelled)', async () => {
    const { engine } = engineOver(2);
    const handle = engine.submit({ ...requests[0]!, maxTokens: 100 });
    handle.cancel();
    const result = await handle.result;
    assert.equal(result.stopReason, 'cancelled');
    assert.ok(result.tokens.length < 100);
  });

  it('stops at a stop string and never streams part of it', async () => {
    const { engine } = engineOver(1);
    const free = await engine.submit({ ...requests[0]!, maxTokens: 12 }).result;
    const stop = free.text.slice(4, 7);
    let streamed = '';
    const cut = await engine.submit({
      ...requests[0]!,
      maxTokens: 12,
      stop: [stop],
      onDelta: (d) => {
        streamed += d.text;
      },
    }).result;
    assert.equal(cut.stopReason, 'stop_string');
    assert.equal(cut.text, free.text.slice(0, free.text.indexOf(stop)));
    assert.equal(streamed, cut.text);
    assert.equal(
      cut.tokens.map((t) => t.text).join(''),
      free.tokens
        .slice(0, cut.tokens.length)
        .map((t) => t.text)
        .join(''),
    );
  });
});

describe('serve helpers', () => {
  it('withheld keeps back a possible stop-string start and an unfinished character', () => {
    assert.equal(withheld('hello wor', ['world']), 'hello ');
    assert.equal(withheld('hello', ['\n\n']), 'hello');
    assert.equal(withheld('a\n', ['\n\n', 'xyz']), 'a');
    assert.equal(withheld('caf\uFFFD', []), 'caf');
  });

  it('topLogprobs gives the k most likely tokens with normalised log-probs', () => {
    const logits = Float32Array.from([0.5, 3, -1, 3, 2]);
    const top = topLogprobs(logits, 3);
    assert.deepEqual(
      top.map((t) => t.id),
      [1, 3, 4],
    );
    const logZ = Math.log([...logits].reduce((s, x) => s + Math.exp(x), 0));
    assert.ok(Math.abs(top[2]!.logprob - (2 - logZ)) < 1e-12);
    assert.deepEqual(topLogprobs(logits, 0), []);
  });
});
