/** `attune score`: teacher-forced per-token log-probs and entropies of text or ids. */
import { UsageError } from '../../errors.ts';
import { type SequenceScore, scoreIds } from '../../models/index.ts';
import { readScoreRecords } from '../../uq/index.ts';
import { jsonOption } from '../args.ts';
import { defineCommand } from '../command.ts';
import { loadModelFromFlags, modelOptions } from '../model-options.ts';
import { formatTable } from '../table.ts';

const options = {
  ...modelOptions,
  text: {
    type: 'string',
    description: 'text to score (encoded as transformers would, special tokens included)',
    valueName: '<text>',
  },
  ids: {
    type: 'integer',
    list: true,
    min: 0,
    description: 'comma-separated token ids, scored as given',
    valueName: '<1,2,3>',
  },
  data: {
    type: 'path',
    description: 'JSONL file of {"text": ...} or {"ids": [...]} records',
    valueName: '<file>',
    deprecatedAliases: ['input'],
  },
  json: jsonOption,
} as const;

interface ScoredSequence {
  ids: number[];
  tokens: { id: number; token: string | null; logprob: number | null; entropy: number | null }[];
  mean_logprob: number;
  sum_logprob: number;
  mean_entropy: number;
  max_entropy: number;
}

/** `attune score --model DIR (--text T | --ids 1,2,3 | --data FILE.jsonl) [--json]`. */
export const scoreCommand = defineCommand({
  name: 'score',
  summary: 'Score text: per-token log-prob and entropy, sequence aggregates',
  description: `Runs one teacher-forced pass through the fused LM head (never full-vocabulary logits for
the whole sequence). For each token: its id, text, log-prob given the previous tokens (none for the
first token) and the entropy of the predictive distribution; for the sequence: mean and sum log-prob
and mean / max entropy.`,
  options,
  examples: [
    'attune score --model ./model --text "Tom had a red ball." --json',
    'attune score --model ./model --ids 1,80,388',
  ],
  async run(args, io) {
    const v = args.values;
    const given = [v.text, v.ids, v.data].filter((x) => x !== undefined).length;
    if (given !== 1) throw new UsageError('score: give exactly one of --text, --ids or --data');
    const records = v.data !== undefined ? readScoreRecords(v.data) : [];
    const loaded = loadModelFromFlags(v);
    const tokenizer = loaded.tokenizer;
    const encode = (text: string): number[] => {
      if (!tokenizer) throw new UsageError(`score: ${loaded.dir} has no tokenizer.json; use --ids`);
      return tokenizer.encode(text);
    };
    const inputs: number[][] =
      v.text !== undefined
        ? [encode(v.text)]
        : v.ids !== undefined
          ? [v.ids]
          : records.map((r) => ('text' in r ? encode(r.text) : r.ids));
    const results: ScoredSequence[] = inputs.map((ids) => {
      const s: SequenceScore = scoreIds(loaded.model, ids);
      return {
        ids,
        tokens: s.tokens.map((t) => ({
          id: t.id,
          token: tokenizer?.idToToken(t.id) ?? null,
          logprob: t.logprob,
          entropy: t.entropy,
        })),
        mean_logprob: s.meanLogprob,
        sum_logprob: s.sumLogprob,
        mean_entropy: s.meanEntropy,
        max_entropy: s.maxEntropy,
      };
    });
    for (const r of results) {
      io.out(
        formatTable(
          r.tokens.map((t) => ({ id: t.id, token: t.token, logprob: t.logprob, entropy: t.entropy })),
        ),
      );
      io.line(
        `mean logprob ${r.mean_logprob.toFixed(4)}  sum ${r.sum_logprob.toFixed(4)}  mean entropy ${r.mean_entropy.toFixed(4)}  max entropy ${r.max_entropy.toFixed(4)}`,
      );
    }
    if (v.json) io.json(results.length === 1 && v.data === undefined ? results[0] : { sequences: results });
    return 0;
  },
});
