/**
 * S3FT, "Selective Self-to-Supervised Fine-Tuning" (Gupta et al. 2025) as a data transform: for each
 * `{prompt, completion}` record, the model answers the prompt greedily; where a judge says the
 * model's answer is equivalent to the gold completion, the record is trained on the model's own
 * answer instead of the gold one (text the model already finds likely, so fine-tuning moves it
 * less and forgets less); elsewhere the gold completion is kept. Other record shapes pass through.
 *
 * The default judge (`equivalentAnswers`) is a rule: the two answers' first lines are equal after
 * lower-casing, collapsing whitespace and dropping spaces before and trailing punctuation (so a
 * word-level decoder's `I don ' t know .` equals `I don't know.`). The paper's judge is an LLM;
 * pass any `judge(gold, own, record)` to use another. The model's answer is its decoded first line,
 * written after the gold completion's leading whitespace (the prompt/completion convention), and
 * re-tokenised like any completion.
 */
import type { Tokenizer } from '../io/tokenizer.ts';
import { type CausalLM, generateBatch } from '../models/index.ts';
import type { DataRecord, PromptCompletionRecord } from './jsonl.ts';

/** Letters, digits and single spaces, lower-case: what the default judge compares. */
function normalizedAnswer(text: string): string {
  const firstLine = text.trim().split('\n')[0] ?? '';
  return firstLine
    .toLowerCase()
    .replace(/\s*([^\w\s])\s*/g, '$1')
    .replace(/[.!?]+$/, '')
    .replace(/\s+/g, ' ')
    .trim();
}

/** The default S3FT judge: the first lines are equal up to case, spacing and trailing punctuation. */
export function equivalentAnswers(gold: string, own: string): boolean {
  const g = normalizedAnswer(gold);
  return g !== '' && g === normalizedAnswer(own);
}

export interface SelfToSupervisedOptions {
  /** Whether `own` (the model's answer) may replace `gold` (default: `equivalentAnswers`). */
  judge?: (gold: string, own: string, record: PromptCompletionRecord) => boolean;
  /** Longest answer generated (default 32 tokens). */
  maxNewTokens?: number;
  /** Generation stops at these strings (default: a newline). */
  stop?: readonly string[];
  /** Prompts answered together (default 16). */
  batch?: number;
  /** Stop ids (default: the tokenizer's EOS ids). */
  eosTokenIds?: readonly number[];
}

export interface SelfToSupervisedResult {
  /** The records, with the judged-equivalent completions replaced by the model's answers. */
  records: DataRecord[];
  /** Indices (into `records`) of the replaced ones. */
  replaced: number[];
  /** The prompt/completion records judged. */
  judged: number;
}

/** Apply S3FT's selection to `records` with `model` (see the file comment). */
export function selfToSupervised(
  model: CausalLM,
  tokenizer: Tokenizer,
  records: readonly DataRecord[],
  options: SelfToSupervisedOptions = {},
): SelfToSupervisedResult {
  const judge = options.judge ?? ((gold: string, own: string) => equivalentAnswers(gold, own));
  const batch = options.batch ?? 16;
  const candidates = records.flatMap((r, i) => (r.shape === 'prompt_completion' ? [i] : []));
  const out = [...records];
  const replaced: number[] = [];
  const wasTraining = model.training;
  model.eval();
  try {
    for (let start = 0; start < candidates.length; start += batch) {
      const chunk = candidates.slice(start, start + batch);
      const results = generateBatch(
        model,
        chunk.map((i) => ({ promptIds: tokenizer.encode((records[i] as PromptCompletionRecord).prompt) })),
        {
          temperature: 0,
          maxNewTokens: options.maxNewTokens ?? 32,
          eosTokenIds: options.eosTokenIds ?? tokenizer.eosTokenIds,
          stopStrings: options.stop ?? ['\n'],
          tokenizer,
        },
      );
      chunk.forEach((i, k) => {
        const record = records[i] as PromptCompletionRecord;
        const own = (results[k]!.text ?? '').split('\n')[0]!.trim();
        if (own === '' || !judge(record.completion, own, record)) return;
        const lead = /^\s*/.exec(record.completion)![0];
        out[i] = { ...record, completion: `${lead}${own}` };
        replaced.push(i);
      });
    }
  } finally {
    model.train(wasTraining);
  }
  return { records: out, replaced, judged: candidates.length };
}
