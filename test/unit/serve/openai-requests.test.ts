/** OpenAI request validation (defaults, limits, refused features, the error shape) and response shapes. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ApiError,
  chatLogprobs,
  completionLogprobs,
  type GeneratedToken,
  parseChatRequest,
  parseCompletionRequest,
} from '../../../src/serve/index.ts';

const limits = { maxTokens: 64 };

/** The ApiError `f` throws. */
function apiError(f: () => unknown): ApiError {
  try {
    f();
  } catch (error) {
    assert.ok(error instanceof ApiError, `expected an ApiError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected an ApiError');
}

describe('completions requests', () => {
  it("applies OpenAI's defaults", () => {
    const r = parseCompletionRequest({ model: 'm', prompt: 'hi' }, limits);
    assert.deepEqual(r, {
      model: 'm',
      maxTokens: 16,
      temperature: 1,
      topP: 1,
      seed: 0,
      stop: [],
      stream: false,
      includeUsage: false,
      logprobs: null,
      prompts: ['hi'],
    });
  });

  it('reads stop, seed, logprobs, several prompts and stream_options', () => {
    const r = parseCompletionRequest(
      {
        model: 'm',
        prompt: ['a', 'b'],
        stop: '\n',
        seed: 3,
        logprobs: 2,
        max_tokens: 8,
        temperature: 0,
        stream: true,
        stream_options: { include_usage: true },
      },
      limits,
    );
    assert.deepEqual(
      [r.prompts, r.stop, r.seed, r.logprobs, r.maxTokens, r.temperature],
      [['a', 'b'], ['\n'], 3, 2, 8, 0],
    );
    assert.equal(r.includeUsage, true);
  });

  it('answers a bad field with 400 naming it in param', () => {
    for (const [body, param] of [
      [{ model: 'm', prompt: 'x', temperature: 3 }, 'temperature'],
      [{ model: 'm', prompt: 'x', max_tokens: 0 }, 'max_tokens'],
      [{ model: 'm', prompt: 'x', logprobs: 6 }, 'logprobs'],
      [{ model: 'm', prompt: 'x', n: 2 }, 'n'],
      [{ model: 'm', prompt: 'x', stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop'],
      [{ model: 'm', prompt: 'x', presence_penalty: 0.5 }, 'presence_penalty'],
      [{ model: 'm', prompt: 'x', echo: true }, 'echo'],
      [{ model: 'm', prompt: '' }, 'prompt'],
      [{ prompt: 'x' }, 'model'],
    ] as const) {
      const e = apiError(() => parseCompletionRequest(body, limits));
      assert.equal(e.status, 400);
      assert.equal(e.param, param, JSON.stringify(body));
      assert.equal(e.body().error.type, 'invalid_request_error');
      assert.match(e.body().error.message, new RegExp(param));
    }
  });

  it('refuses max_tokens over the server limit, and a body that is not an object', () => {
    const e = apiError(() => parseCompletionRequest({ model: 'm', prompt: 'x', max_tokens: 65 }, limits));
    assert.equal(e.param, 'max_tokens');
    assert.match(e.message, /limit of 64/);
    assert.equal(apiError(() => parseCompletionRequest([1], limits)).status, 400);
  });
});

describe('chat requests', () => {
  it('joins text parts, maps developer to system, defaults max_tokens to the server limit', () => {
    const r = parseChatRequest(
      {
        model: 'm',
        messages: [
          { role: 'developer', content: 'be brief' },
          {
            role: 'user',
            content: [
              { type: 'text', text: 'a' },
              { type: 'text', text: 'b' },
            ],
          },
        ],
        logprobs: true,
        top_logprobs: 3,
      },
      limits,
    );
    assert.deepEqual(r.messages, [
      { role: 'system', content: 'be brief' },
      { role: 'user', content: 'ab' },
    ]);
    assert.equal(r.maxTokens, 64);
    assert.equal(r.logprobs, 3);
    assert.equal(
      parseChatRequest({ model: 'm', messages: [{ role: 'user', content: 'x' }] }, limits).logprobs,
      null,
    );
  });

  it('refuses top_logprobs without logprobs, tools, and an unknown role', () => {
    const msgs = [{ role: 'user', content: 'x' }];
    assert.equal(
      apiError(() => parseChatRequest({ model: 'm', messages: msgs, top_logprobs: 2 }, limits)).param,
      'top_logprobs',
    );
    assert.equal(
      apiError(() => parseChatRequest({ model: 'm', messages: msgs, tools: [{}] }, limits)).param,
      'tools',
    );
    assert.equal(
      apiError(() => parseChatRequest({ model: 'm', messages: [{ role: 'robot', content: 'x' }] }, limits))
        .param,
      'messages.0.role',
    );
  });
});

describe('logprobs shapes', () => {
  const token = (id: number, text: string, logprob: number): GeneratedToken => ({
    id,
    text,
    logprob,
    top: [
      { id, text, logprob },
      { id: 99, text: ' z', logprob: logprob - 1 },
    ],
    stats: { logprob, entropy: 0, top1: logprob, top2: logprob - 1, sqrtMass: 1, vocabSize: 100 },
  });
  const tokens = [token(1, ' Hello', -0.1), token(2, ' wörld', -0.5)];

  it('completions: tokens, token_logprobs, top_logprobs dicts, text_offset', () => {
    assert.deepEqual(completionLogprobs(tokens, 3), {
      tokens: [' Hello', ' wörld'],
      token_logprobs: [-0.1, -0.5],
      top_logprobs: [
        { ' Hello': -0.1, ' z': -1.1 },
        { ' wörld': -0.5, ' z': -1.5 },
      ],
      text_offset: [3, 9],
    });
  });

  it('chat: content[] with UTF-8 bytes and top_logprobs lists', () => {
    const lp = chatLogprobs(tokens);
    assert.equal(lp.refusal, null);
    assert.deepEqual(lp.content[1]!.bytes, [...Buffer.from(' wörld', 'utf8')]);
    assert.deepEqual(
      lp.content[0]!.top_logprobs.map((t) => t.token),
      [' Hello', ' z'],
    );
  });
});
