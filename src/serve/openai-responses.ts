/**
 * OpenAI response bodies: completions (legacy `logprobs.{tokens, token_logprobs, top_logprobs,
 * text_offset}`), chat completions (`logprobs.content[]`), their stream chunks, and usage. Each
 * choice carries Attune's extra `attune` field (uncertainty.ts), which OpenAI clients ignore.
 * Logprobs list every generated token but an EOS; the log-probs are the model's own distribution
 * (temperature 1), whatever temperature sampled the token.
 */
import type { GeneratedToken, SequenceResult } from './engine.ts';
import type { AttuneField } from './uncertainty.ts';

export type FinishReason = 'stop' | 'length';

/** OpenAI's finish_reason of a stop reason. */
export function finishReason(stop: SequenceResult['stopReason']): FinishReason {
  return stop === 'length' ? 'length' : 'stop';
}

/** Token counts of a request. */
export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** Usage over a request's sequences. */
export function usageOf(results: readonly SequenceResult[]): Usage {
  const prompt = results.reduce((s, r) => s + r.promptTokens, 0);
  const completion = results.reduce((s, r) => s + r.tokens.length, 0);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

/** The legacy completions logprobs object of `tokens`, text offsets counted from `offset`. */
export function completionLogprobs(tokens: readonly GeneratedToken[], offset = 0) {
  const textOffset: number[] = [];
  let at = offset;
  for (const t of tokens) {
    textOffset.push(at);
    at += t.text.length;
  }
  return {
    tokens: tokens.map((t) => t.text),
    token_logprobs: tokens.map((t) => t.logprob),
    // a dict per token, as OpenAI: token text -> log-prob (two ids with one text keep the likelier)
    top_logprobs: tokens.map((t) => {
      const entries: Record<string, number> = {};
      for (const alt of t.top) if (!(alt.text in entries)) entries[alt.text] = alt.logprob;
      return entries;
    }),
    text_offset: textOffset,
  };
}

const bytesOf = (text: string) => [...Buffer.from(text, 'utf8')];

/** The chat logprobs object of `tokens`. */
export function chatLogprobs(tokens: readonly GeneratedToken[]) {
  return {
    content: tokens.map((t) => ({
      token: t.text,
      logprob: t.logprob,
      bytes: bytesOf(t.text),
      top_logprobs: t.top.map((alt) => ({ token: alt.text, logprob: alt.logprob, bytes: bytesOf(alt.text) })),
    })),
    refusal: null,
  };
}

/** One finished choice: its sequence, its Attune field and the tokens its logprobs list. */
export interface FinishedChoice {
  result: SequenceResult;
  attune: AttuneField;
  /** null when the request asked no logprobs. */
  logprobTokens: GeneratedToken[] | null;
}

/** Generated tokens that logprobs list (all but an EOS). */
export function listedTokens(result: SequenceResult): GeneratedToken[] {
  return result.stopReason === 'eos' ? result.tokens.slice(0, -1) : result.tokens;
}

/** A /v1/completions response body. */
export function completionBody(
  id: string,
  created: number,
  model: string,
  choices: readonly FinishedChoice[],
) {
  return {
    id,
    object: 'text_completion',
    created,
    model,
    choices: choices.map((c, index) => ({
      text: c.result.text,
      index,
      logprobs: c.logprobTokens ? completionLogprobs(c.logprobTokens) : null,
      finish_reason: finishReason(c.result.stopReason),
      attune: c.attune,
    })),
    usage: usageOf(choices.map((c) => c.result)),
  };
}

/** A /v1/chat/completions response body (one choice). */
export function chatBody(id: string, created: number, model: string, choice: FinishedChoice) {
  return {
    id,
    object: 'chat.completion',
    created,
    model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: choice.result.text, refusal: null },
        logprobs: choice.logprobTokens ? chatLogprobs(choice.logprobTokens) : null,
        finish_reason: finishReason(choice.result.stopReason),
        attune: choice.attune,
      },
    ],
    usage: usageOf([choice.result]),
  };
}

/** A streamed completions chunk of choice `index`. */
export function completionChunk(
  id: string,
  created: number,
  model: string,
  index: number,
  text: string,
  logprobs: { tokens: readonly GeneratedToken[]; offset: number } | null,
  finish: { reason: FinishReason; attune: AttuneField } | null,
) {
  return {
    id,
    object: 'text_completion',
    created,
    model,
    choices: [
      {
        text,
        index,
        logprobs: logprobs ? completionLogprobs(logprobs.tokens, logprobs.offset) : null,
        finish_reason: finish?.reason ?? null,
        ...(finish ? { attune: finish.attune } : {}),
      },
    ],
  };
}

/** A streamed chat chunk: `delta` (role and/or content), logprobs of its tokens, the finish. */
export function chatChunk(
  id: string,
  created: number,
  model: string,
  delta: { role?: 'assistant'; content?: string },
  logprobTokens: readonly GeneratedToken[] | null,
  finish: { reason: FinishReason; attune: AttuneField } | null,
) {
  return {
    id,
    object: 'chat.completion.chunk',
    created,
    model,
    choices: [
      {
        index: 0,
        delta,
        logprobs: logprobTokens ? chatLogprobs(logprobTokens) : null,
        finish_reason: finish?.reason ?? null,
        ...(finish ? { attune: finish.attune } : {}),
      },
    ],
  };
}

/** The last chunk of a stream with `stream_options.include_usage`: no choices, the usage. */
export function usageChunk(id: string, created: number, model: string, object: string, usage: Usage) {
  return { id, object, created, model, choices: [], usage };
}
