/**
 * The server's decode loop: continuous batching of concurrent requests over one model.
 *
 * A request is a sequence (prompt ids, adapter, sampling settings). It waits in a bounded queue,
 * joins the running batch at the next step when a slot is free (its prompt is prefilled alone into
 * its own KV cache), and then every step runs one batched forward over all running sequences, rows
 * sorted by adapter (see multi-lora.ts), each row sampling with its own seeded generator. A sequence
 * leaves the batch on EOS, a stop string, its token budget or cancellation, and its slot goes to the
 * next waiting one. Between steps the loop yields to the event loop so the HTTP server keeps
 * accepting requests. Each row's result is what it would be alone (row-independent kernels, per-row
 * caches, per-row generators): batching changes throughput, not answers.
 */
import { AttuneError } from '../errors.ts';
import type { Tokenizer } from '../io/index.ts';
import {
  type CausalLM,
  distributionStats,
  type KvCache,
  type SamplingOptions,
  sampleToken,
  type TokenStats,
} from '../models/index.ts';
import { fromArray, noGrad, Rng, scope, slice } from '../tensor/index.ts';
import type { AdapterRouter, RowGroup } from './multi-lora.ts';

/** The queue is full: the request is refused (HTTP 429). */
export class QueueFullError extends AttuneError {}

/** The engine is draining for shutdown and takes no new requests (HTTP 503). */
export class DrainingError extends AttuneError {}

/** What a sequence asks of the decode loop. */
export interface SequenceRequest {
  promptIds: readonly number[];
  /** Adapter index in the AdapterSet (-1 = the base). */
  adapter: number;
  maxTokens: number;
  temperature: number;
  topP: number;
  seed: number;
  stop: readonly string[];
  /** How many most likely alternatives to report per token (0 = none). */
  topLogprobs: number;
  /** Called after each step that produced text or tokens (streaming). */
  onDelta?: (delta: SequenceDelta) => void;
}

/** One generated token as reported to clients. */
export interface GeneratedToken {
  id: number;
  /** The token's text (decoded alone). */
  text: string;
  /** log p of the token under the model's (temperature 1) distribution. */
  logprob: number;
  /** The `topLogprobs` most likely tokens with their log-probs, most likely first. */
  top: { id: number; text: string; logprob: number }[];
  stats: TokenStats;
}

/** What a step added to a sequence: new text (stop strings held back) and new tokens. */
export interface SequenceDelta {
  text: string;
  tokens: GeneratedToken[];
}

/** A finished sequence. */
export interface SequenceResult {
  /** Generated tokens, including the EOS or stop-completing token. */
  tokens: GeneratedToken[];
  /** The continuation: stop string and EOS removed. */
  text: string;
  stopReason: 'eos' | 'stop_string' | 'length' | 'cancelled';
  promptTokens: number;
  /** Tokens of the answer proper: the EOS or the stop-completing token excluded. */
  answerTokens: number;
}

/** A submitted sequence: its result, and how to cancel it (a client that went away). */
export interface SequenceHandle {
  result: Promise<SequenceResult>;
  cancel(): void;
}

export interface EngineOptions {
  model: CausalLM;
  tokenizer: Tokenizer;
  router: AdapterRouter;
  eosTokenIds: readonly number[];
  /** Sequences decoded together at most. */
  maxBatch: number;
  /** Sequences waiting for a slot at most (beyond that: QueueFullError). */
  maxQueue: number;
}

interface Running {
  request: SequenceRequest;
  rng: Rng;
  cache: KvCache | null;
  tokens: GeneratedToken[];
  /** Text already handed to onDelta. */
  emitted: string;
  /** The decoded continuation so far (special tokens skipped). */
  decoded: string;
  /** The text of the prompt's last CONTEXT_TOKENS tokens (set on first use). */
  contextText?: string;
  text: string | null;
  stopReason: SequenceResult['stopReason'] | null;
  resolve: (r: SequenceResult) => void;
  reject: (e: unknown) => void;
}

/** Prompt tokens decoded before the continuation to get its leading spacing right. */
const CONTEXT_TOKENS = 4;

/** Counters for /health and the bench. */
export interface EngineStats {
  running: number;
  waiting: number;
  steps: number;
  /** Largest batch one decode step ran. */
  maxBatchSeen: number;
}

/** The decode loop; see the file comment. */
export class DecodeEngine {
  private readonly waiting: Running[] = [];
  private readonly running: Running[] = [];
  private loopActive = false;
  private draining = false;
  private idleWaiters: (() => void)[] = [];
  private readonly eos: Set<number>;
  private steps = 0;
  private maxBatchSeen = 0;

  constructor(private readonly options: EngineOptions) {
    this.eos = new Set(options.eosTokenIds);
  }

  /** Queue a sequence; throws QueueFullError when the queue is full, DrainingError when draining. */
  submit(request: SequenceRequest): SequenceHandle {
    if (this.draining) throw new DrainingError('the server is shutting down and takes no new requests');
    const free = this.options.maxBatch - this.running.length;
    if (this.waiting.length >= this.options.maxQueue + Math.max(0, free)) {
      throw new QueueFullError(
        `the request queue is full (${this.running.length} running, ${this.waiting.length} waiting, --max-queue ${this.options.maxQueue}); retry later`,
      );
    }
    let entry!: Running;
    const result = new Promise<SequenceResult>((resolve, reject) => {
      entry = {
        request,
        rng: new Rng(request.seed),
        cache: null,
        tokens: [],
        emitted: '',
        decoded: '',
        text: null,
        stopReason: request.maxTokens <= 0 ? 'length' : null,
        resolve,
        reject,
      };
    });
    this.waiting.push(entry);
    this.startLoop();
    return {
      result,
      cancel: () => {
        if (entry.stopReason === null) entry.stopReason = 'cancelled';
      },
    };
  }

  /** Counters: running and waiting sequences, steps run, the largest batch seen. */
  stats(): EngineStats {
    return {
      running: this.running.length,
      waiting: this.waiting.length,
      steps: this.steps,
      maxBatchSeen: this.maxBatchSeen,
    };
  }

  /** Refuse new sequences and resolve once every queued and running one has finished. */
  drain(): Promise<void> {
    this.draining = true;
    return this.whenIdle();
  }

  /** Whether drain() was called. */
  get isDraining(): boolean {
    return this.draining;
  }

  /** Resolves when no sequence is queued or running. */
  whenIdle(): Promise<void> {
    if (!this.loopActive && this.waiting.length === 0 && this.running.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private startLoop(): void {
    if (this.loopActive) return;
    this.loopActive = true;
    setImmediate(() => this.loop());
  }

  private loop(): void {
    try {
      this.step();
    } catch (error) {
      // a kernel or model error fails the sequences in flight, never the process
      for (const r of [...this.running, ...this.waiting]) r.reject(error);
      this.running.length = 0;
      this.waiting.length = 0;
    }
    if (this.running.length > 0 || this.waiting.length > 0) {
      setImmediate(() => this.loop());
      return;
    }
    this.loopActive = false;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Admit waiting sequences into free slots (prefill), then one batched decode step. */
  private step(): void {
    const { model, router } = this.options;
    this.retireFinished();
    noGrad(() => {
      while (this.running.length < this.options.maxBatch && this.waiting.length > 0) {
        const entry = this.waiting.shift()!;
        if (entry.stopReason !== null) {
          this.finish(entry);
          continue;
        }
        this.prefill(entry);
        this.running.push(entry);
      }
      this.retireFinished();
      if (this.running.length === 0) return;
      // rows sorted by adapter, so each adapter's rows form one range (stable: arrival order within)
      const rows = [...this.running].sort((a, b) => a.request.adapter - b.request.adapter);
      const groups: RowGroup[] = [];
      rows.forEach((r, i) => {
        const last = groups.at(-1);
        if (last && last.adapter === r.request.adapter) last.end = i + 1;
        else groups.push({ adapter: r.request.adapter, start: i, end: i + 1 });
      });
      this.steps++;
      this.maxBatchSeen = Math.max(this.maxBatchSeen, rows.length);
      scope(() => {
        const last = Int32Array.from(rows, (r) => r.tokens.at(-1)!.id);
        const ids = fromArray(last, [rows.length, 1], { dtype: 'i32' });
        const saved = router.groups;
        router.groups = groups;
        try {
          const hidden = model.forwardHidden(ids, { cache: rows.map((r) => r.cache!) });
          const logits = model.logits(hidden);
          const V = logits.shape.at(-1)!;
          const data = logits.data as Float32Array;
          rows.forEach((r, row) => {
            this.accept(r, data.subarray(row * V, (row + 1) * V));
          });
        } finally {
          router.groups = saved;
        }
      });
    });
    this.retireFinished();
  }

  /** Run the prompt through the model into a fresh cache and take the first token. */
  private prefill(entry: Running): void {
    const { model, router } = this.options;
    const promptIds = entry.request.promptIds;
    entry.cache = model.createKvCache(promptIds.length + entry.request.maxTokens);
    scope(() =>
      router.withAdapter(entry.request.adapter, 1, () => {
        const ids = fromArray(Int32Array.from(promptIds), [1, promptIds.length], { dtype: 'i32' });
        const hidden = model.forwardHidden(ids, { cache: entry.cache });
        const logits = model.logits(slice(hidden, 1, promptIds.length - 1, promptIds.length));
        this.accept(entry, logits.data as Float32Array);
      }),
    );
  }

  /** Sample the next token of `entry` from its logits row; decide whether it has finished. */
  private accept(entry: Running, logits: Float32Array): void {
    if (entry.stopReason !== null) return; // cancelled while in the batch
    const { request } = entry;
    const { tokenizer } = this.options;
    const sampling: SamplingOptions = { temperature: request.temperature, topK: 0, topP: request.topP };
    const id = sampleToken(logits, sampling, entry.rng);
    const stats = distributionStats(logits, id);
    const previous = entry.tokens.at(-1)?.id ?? request.promptIds.at(-1);
    const top = topLogprobs(logits, request.topLogprobs).map((t) => ({
      ...t,
      text: this.tokenText(previous, t.id),
    }));
    const before = entry.decoded;
    const decoded = this.continuation(entry, [...entry.tokens.map((t) => t.id), id]);
    entry.decoded = decoded;
    // a token's text is what it adds to the decoded continuation, so the texts join to the text
    const text = decoded.startsWith(before) ? decoded.slice(before.length) : tokenizer.decode([id]);
    const token: GeneratedToken = { id, text, logprob: stats.logprob, top, stats };
    entry.tokens.push(token);
    let safeText: string;
    if (this.eos.has(id)) {
      entry.stopReason = 'eos';
      entry.text = before;
      safeText = before;
    } else {
      const hits = request.stop.map((s) => decoded.indexOf(s)).filter((x) => x >= 0);
      if (hits.length > 0) {
        entry.stopReason = 'stop_string';
        entry.text = decoded.slice(0, Math.min(...hits));
        safeText = entry.text;
      } else if (entry.tokens.length >= request.maxTokens) {
        entry.stopReason = 'length';
        entry.text = decoded;
        safeText = decoded;
      } else safeText = withheld(decoded, request.stop);
    }
    const delta = safeText.startsWith(entry.emitted) ? safeText.slice(entry.emitted.length) : '';
    if (delta.length > 0) entry.emitted += delta;
    request.onDelta?.({ text: delta, tokens: [token] });
  }

  /**
   * The text `ids` continue the prompt with: decoded after the prompt's last few tokens, minus their
   * own text, so a tokenizer's spacing between prompt and continuation is kept (prompt + text = the
   * whole decoded text, as OpenAI's completions).
   */
  private continuation(entry: Running, ids: readonly number[]): string {
    const { tokenizer } = this.options;
    const context = entry.request.promptIds.slice(-CONTEXT_TOKENS);
    entry.contextText ??= tokenizer.decode(context, { skipSpecialTokens: true });
    const whole = tokenizer.decode([...context, ...ids], { skipSpecialTokens: true });
    return whole.startsWith(entry.contextText)
      ? whole.slice(entry.contextText.length)
      : tokenizer.decode(ids, { skipSpecialTokens: true });
  }

  /** What token `id` adds to text ending in token `previous` (spacing and ## joins of the tokenizer). */
  private tokenText(previous: number | undefined, id: number): string {
    const { tokenizer } = this.options;
    if (previous === undefined) return tokenizer.decode([id], { skipSpecialTokens: false });
    const before = tokenizer.decode([previous]);
    const both = tokenizer.decode([previous, id]);
    return both.startsWith(before) ? both.slice(before.length) : tokenizer.decode([id]);
  }

  private retireFinished(): void {
    for (let i = this.running.length - 1; i >= 0; i--) {
      const r = this.running[i]!;
      if (r.stopReason !== null) {
        this.running.splice(i, 1);
        this.finish(r);
      }
    }
  }

  private finish(entry: Running): void {
    const tokens = entry.tokens;
    const text = entry.text ?? entry.decoded;
    // the final text may differ from what was streamed only where a stop string was held back
    if (
      entry.stopReason !== 'cancelled' &&
      text.length > entry.emitted.length &&
      text.startsWith(entry.emitted)
    ) {
      const rest = text.slice(entry.emitted.length);
      entry.emitted = text;
      entry.request.onDelta?.({ text: rest, tokens: [] });
    }
    const stopReason = entry.stopReason ?? 'length';
    const answerTokens =
      stopReason === 'eos' || stopReason === 'stop_string' ? tokens.length - 1 : tokens.length;
    entry.resolve({
      tokens,
      text,
      stopReason,
      promptTokens: entry.request.promptIds.length,
      answerTokens,
    });
  }
}

/**
 * `text` minus any tail that could be the start of a stop string, and minus trailing U+FFFD (a
 * character whose UTF-8 bytes are not all generated yet): the part that is safe to stream.
 */
export function withheld(text: string, stops: readonly string[]): string {
  let keep = text.length;
  for (const s of stops) {
    for (let k = Math.min(s.length - 1, text.length); k > 0; k--) {
      if (text.endsWith(s.slice(0, k))) {
        keep = Math.min(keep, text.length - k);
        break;
      }
    }
  }
  let out = text.slice(0, keep);
  while (out.endsWith('\uFFFD')) out = out.slice(0, -1);
  return out;
}

/** The `k` most likely ids of a logits row with their log-probs, most likely first (lower id on ties). */
export function topLogprobs(logits: ArrayLike<number>, k: number): { id: number; logprob: number }[] {
  if (k <= 0) return [];
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max);
  const logSum = Math.log(sum) + max;
  // a k-slot insertion list: O(V k) for the small k clients ask for (at most 20)
  const best: number[] = [];
  for (let i = 0; i < logits.length; i++) {
    const x = logits[i]!;
    if (best.length === k && x <= logits[best[k - 1]!]!) continue;
    let at = best.length;
    while (at > 0 && logits[best[at - 1]!]! < x) at--;
    best.splice(at, 0, i);
    if (best.length > k) best.pop();
  }
  return best.map((id) => ({ id, logprob: logits[id]! - logSum }));
}
