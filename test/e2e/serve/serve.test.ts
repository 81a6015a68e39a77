/**
 * `attune serve` end to end: the official `openai` client against a real server on 127.0.0.1 over
 * the shipped small world base with two LoRA adapters: models, completions, chat, streaming, the
 * logprobs shapes, the attune field (with a temperature calibrator), errors (400, 404, 413, 429),
 * 20 concurrent streams across both adapters equal to the same requests one by one, and SIGTERM
 * draining an in-flight stream before exiting 0.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { loadModel } from '../../../src/models/index.ts';
import { loadAdapter } from '../../../src/peft/index.ts';
import { type ServeHandle, startServer } from '../../../src/serve/index.ts';
import { answerLogits, TemperatureCalibrator, temperatureConfidence } from '../../../src/uq/index.ts';
import { shippedWorldBaseDir } from '../../../src/world/base.ts';
import { writeRandomAdapters } from '../../helpers/lora-adapters.ts';

const baseDir = shippedWorldBaseDir('small');
const tmp = mkdtempSync(join(tmpdir(), 'attune-serve-e2e-'));
const adapters = writeRandomAdapters(baseDir, tmp, [
  { name: 'qv', seed: 1, targets: ['q_proj', 'v_proj'] },
  { name: 'mlp', seed: 2, targets: ['o_proj', 'down_proj'], r: 2 },
]);
const CHAT_TEMPLATE =
  '{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}';
const calibratorFile = join(tmp, 'temperature.json');
writeFileSync(
  calibratorFile,
  JSON.stringify({ type: 'temperature', version: 1, params: { temperature: 2 } }),
);

// biome-ignore lint/suspicious/noExplicitAny: the attune field is an extension OpenAI's types do not know
type Loose = any;

let server: ServeHandle;
let client: OpenAI;
before(async () => {
  server = await startServer({
    modelDir: baseDir,
    adapters,
    port: 0,
    maxBatch: 20,
    maxQueue: 40,
    maxTokens: 48,
    maxBodyBytes: 4096,
    chatTemplate: CHAT_TEMPLATE,
    calibratorPath: calibratorFile,
    abstainThreshold: 0.5,
  });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
after(async () => {
  await server?.close();
  rmSync(tmp, { recursive: true, force: true });
});

/** The error the client throws for `f`. */
async function clientError(f: () => Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await f();
  } catch (error) {
    assert.ok(error instanceof OpenAI.APIError, String(error));
    return error;
  }
  assert.fail('expected an API error');
}

/** A streamed completion's text, per-token logprobs, finish reason and attune field. */
async function streamCompletion(body: {
  model: string;
  prompt: string;
  max_tokens: number;
  temperature: number;
  seed: number;
}) {
  const stream = await client.completions.create({ ...body, stream: true, logprobs: 1 });
  let text = '';
  const logprobs: number[] = [];
  let finish: string | null = null;
  let attune: Loose = null;
  for await (const chunk of stream) {
    const choice = chunk.choices[0]!;
    text += choice.text;
    logprobs.push(...((choice.logprobs?.token_logprobs as number[] | undefined) ?? []));
    if (choice.finish_reason) {
      finish = choice.finish_reason;
      attune = (choice as Loose).attune;
    }
  }
  return { text, logprobs, finish, confidence: attune?.confidence as number };
}

describe('attune serve (openai client)', () => {
  it('lists the base and each adapter', async () => {
    const models = await client.models.list();
    assert.deepEqual(
      models.data.map((m) => m.id),
      ['small', 'small:qv', 'small:mlp'],
    );
  });

  it('completes with legacy logprobs and the attune field; adapters change the answer', async () => {
    const ask = (model: string) =>
      client.completions.create({
        model,
        prompt: 'Alice was born in',
        max_tokens: 12,
        temperature: 0,
        logprobs: 2,
      });
    const [base, qv] = await Promise.all([ask('small'), ask('small:qv')]);
    const choice = base.choices[0]!;
    assert.equal(base.object, 'text_completion');
    const lp = choice.logprobs!;
    assert.equal(lp.tokens!.length, lp.token_logprobs!.length);
    assert.equal(lp.tokens!.join(''), choice.text.slice(0, lp.tokens!.join('').length));
    assert.ok(lp.top_logprobs!.every((t) => Object.keys(t).length >= 1 && Object.keys(t).length <= 2));
    assert.equal(lp.text_offset![1], lp.tokens![0]!.length);
    assert.ok(lp.token_logprobs!.every((x) => x <= 0));
    const attune: Loose = (choice as Loose).attune;
    assert.equal(attune.model, 'small');
    assert.equal(attune.calibrated, true);
    assert.ok(attune.confidence > 0 && attune.confidence < 1);
    assert.ok(typeof attune.scores.mean_entropy === 'number' && typeof attune.scores.msp === 'number');
    assert.equal(attune.abstain, attune.confidence < 0.5);
    assert.equal(
      base.usage!.completion_tokens,
      lp.tokens!.length + (choice.finish_reason === 'stop' ? 1 : 0),
    );
    assert.notEqual(qv.choices[0]!.text, choice.text);
  });

  it("reports the temperature-calibrated confidence of the request's own adapter", async () => {
    const prompt = 'The capital of';
    const r = await client.completions.create({
      model: 'small:mlp',
      prompt,
      max_tokens: 8,
      temperature: 0,
      logprobs: 0,
    });
    const attune: Loose = (r.choices[0] as Loose).attune;
    const reference = loadModel(baseDir);
    loadAdapter(reference.model, adapters[1]!.dir);
    const promptIds = reference.tokenizer!.encode(prompt);
    const completion = await client.completions.create({
      model: 'small:mlp',
      prompt,
      max_tokens: 8,
      temperature: 0,
    });
    assert.equal(completion.choices[0]!.text, r.choices[0]!.text);
    const answer = reference.tokenizer!.encode(prompt + r.choices[0]!.text).slice(promptIds.length);
    const want = temperatureConfidence(
      new TemperatureCalibrator(2),
      answerLogits(reference.model, promptIds, answer.slice(0, attune.answer_tokens)),
      answer.slice(0, attune.answer_tokens),
    );
    assert.ok(Math.abs(attune.confidence - want) < 1e-5, `${attune.confidence} vs ${want}`);
    assert.notEqual(attune.confidence, attune.uncalibrated_confidence);
  });

  it('chats through the chat template, with logprobs.content[] and streaming chunks', async () => {
    const messages = [{ role: 'user' as const, content: 'Where was Alice born?' }];
    const r = await client.chat.completions.create({
      model: 'small:qv',
      messages,
      max_tokens: 10,
      temperature: 0,
      logprobs: true,
      top_logprobs: 2,
    });
    assert.equal(r.object, 'chat.completion');
    const choice = r.choices[0]!;
    assert.equal(choice.message.role, 'assistant');
    assert.equal(typeof choice.message.content, 'string');
    const content = choice.logprobs!.content!;
    assert.ok(content.length > 0);
    assert.ok(content.every((t) => t.top_logprobs.length === 2 && Array.isArray(t.bytes)));
    assert.equal((choice as Loose).attune.model, 'small:qv');
    const stream = await client.chat.completions.create({
      model: 'small:qv',
      messages,
      max_tokens: 10,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let role: string | undefined;
    let usage: Loose = null;
    let finished = 0;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      const c = chunk.choices[0];
      if (!c) continue;
      role ??= c.delta.role;
      text += c.delta.content ?? '';
      if (c.finish_reason) finished++;
    }
    assert.equal(role, 'assistant');
    assert.equal(text, choice.message.content);
    assert.equal(finished, 1);
    assert.equal(usage.completion_tokens, r.usage!.completion_tokens);
  });

  it('stops at a stop string', async () => {
    const free = await client.completions.create({
      model: 'small',
      prompt: 'Alice was born in',
      max_tokens: 12,
      temperature: 0,
    });
    const stop = free.choices[0]!.text.slice(5, 8);
    const cut = await client.completions.create({
      model: 'small',
      prompt: 'Alice was born in',
      max_tokens: 12,
      temperature: 0,
      stop: [stop],
    });
    assert.equal(cut.choices[0]!.finish_reason, 'stop');
    assert.equal(cut.choices[0]!.text, free.choices[0]!.text.slice(0, free.choices[0]!.text.indexOf(stop)));
  });

  it("answers bad requests with 4xx in OpenAI's error shape", async () => {
    const notFound = await clientError(() => client.completions.create({ model: 'small:nope', prompt: 'x' }));
    assert.equal(notFound.status, 404);
    assert.equal(notFound.code, 'model_not_found');
    assert.equal(notFound.param, 'model');
    const bad = await clientError(() =>
      client.completions.create({ model: 'small', prompt: 'x', temperature: 5 }),
    );
    assert.equal(bad.status, 400);
    assert.equal(bad.param, 'temperature');
    const long = await clientError(() =>
      client.completions.create({ model: 'small', prompt: 'the city of '.repeat(60), max_tokens: 48 }),
    );
    assert.equal(long.status, 400);
    assert.equal(long.code, 'context_length_exceeded');
    const big = await fetch(`${server.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'small', prompt: 'x'.repeat(5000) }),
    });
    assert.equal(big.status, 413);
    const body = (await big.json()) as Loose;
    assert.equal(body.error.code, 'request_too_large');
    assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type']);
    const junk = await fetch(`${server.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"model":',
    });
    assert.equal(junk.status, 400);
    assert.equal(((await junk.json()) as Loose).error.type, 'invalid_request_error');
    const route = await fetch(`${server.url}/v1/embeddings`, { method: 'POST' });
    assert.equal(route.status, 404);
  });

  it('20 concurrent streams across two adapters equal the same requests run one by one', async () => {
    const requests = Array.from({ length: 20 }, (_, i) => ({
      model: i % 2 === 0 ? 'small:qv' : 'small:mlp',
      prompt: [
        'Alice was born in',
        'The capital of',
        'He works as a',
        'She lives in the city of',
        'In the year',
      ][i % 5]!,
      max_tokens: 6 + (i % 7),
      temperature: i % 3 === 0 ? 0.8 : 0,
      seed: i,
    }));
    const alone = [];
    for (const r of requests) alone.push(await streamCompletion(r));
    const before = server.engine.stats().maxBatchSeen;
    const together = await Promise.all(requests.map((r) => streamCompletion(r)));
    assert.ok(
      server.engine.stats().maxBatchSeen > Math.max(before, 1),
      'the requests were decoded in one batch',
    );
    assert.deepEqual(together, alone);
    assert.ok(new Set(alone.map((a) => a.text)).size > 5);
  });
});

describe('attune serve limits and shutdown', () => {
  it('answers 429 when the queue is full (and serves what fits)', async () => {
    const small = await startServer({ modelDir: baseDir, port: 0, maxBatch: 1, maxQueue: 1 });
    try {
      const c = new OpenAI({ baseURL: `${small.url}/v1`, apiKey: 'unused', maxRetries: 0 });
      const full = await clientError(() =>
        c.completions.create({ model: 'small', prompt: ['a', 'b', 'c'], max_tokens: 4 }),
      );
      assert.equal(full.status, 429);
      assert.equal(full.code, 'queue_full');
      const fits = await c.completions.create({ model: 'small', prompt: ['a', 'b'], max_tokens: 4 });
      assert.equal(fits.choices.length, 2);
    } finally {
      await small.close();
    }
  });

  it('drains an in-flight stream on SIGTERM, then exits 0', async () => {
    const bin = fileURLToPath(new URL('../../../bin/attune.js', import.meta.url));
    const child = spawn(
      process.execPath,
      [bin, 'serve', '--model', baseDir, '--port', '0', '--max-tokens', '120'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        const m = /listening on (http:\/\/\S+)/.exec(stderr);
        if (m) resolve(m[1]!);
      });
      child.on('exit', () => reject(new Error(`serve exited early: ${stderr}`)));
    });
    const c = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const stream = await c.completions.create({
      model: 'small',
      prompt: 'Alice was born in',
      max_tokens: 120,
      temperature: 0.9,
      seed: 3,
      stream: true,
    });
    let chunks = 0;
    let finish: string | null = null;
    for await (const chunk of stream) {
      if (chunks++ === 0) child.kill('SIGTERM');
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assert.ok(finish === 'stop' || finish === 'length', `the stream ran to its end (finish ${finish})`);
    assert.equal(await exited, 0, stderr);
    assert.match(stderr, /SIGTERM: draining/);
  });
});
