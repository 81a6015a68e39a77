/** `attune score`: teacher-forced per-token log-probs and entropies of text or ids. */
import { readFileSync } from 'node:fs';
import { DataError, UsageError } from '../../errors.ts';
import { type SequenceScore, scoreIds } from '../../models/index.ts';
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
  ids: { type: 'string', description: 'comma-separated token ids, scored as given', valueName: '<1,2,3>' },
  input: {
    type: 'string',
    description: 'JSONL file of {"text": ...} or {"ids": [...]} records',
    valueName: '<file>',
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

function parseIds(text: string, where: string): number[] {
  const ids = text.split(',').map((s) => Number(s.trim()));
  if (ids.length === 0 || ids.some((id) => !Number.isInteger(id) || id < 0)) {
    throw new UsageError(`${where}: expected comma-separated non-negative integers, found '${text}'`);
  }
  return ids;
}

/** `attune score --model DIR (--text T | --ids 1,2,3 | --input FILE.jsonl) [--json]`. */
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
    const given = [v.text, v.ids, v.input].filter((x) => x !== undefined).length;
    if (given !== 1) throw new UsageError('score: give exactly one of --text, --ids or --input');
    const loaded = loadModelFromFlags(v, 'score');
    const tokenizer = loaded.tokenizer;
    const encode = (text: string): number[] => {
      if (!tokenizer) throw new UsageError(`score: ${loaded.dir} has no tokenizer.json; use --ids`);
      return tokenizer.encode(text);
    };
    const inputs: number[][] = [];
    if (v.text !== undefined) inputs.push(encode(v.text));
    else if (v.ids !== undefined) inputs.push(parseIds(v.ids, '--ids'));
    else {
      const lines = readFileSync(v.input!, 'utf8').split('\n');
      lines.forEach((line, i) => {
        if (line.trim() === '') return;
        let rec: unknown;
        try {
          rec = JSON.parse(line);
        } catch (err) {
          throw new DataError(v.input!, i + 1, `invalid JSON: ${(err as Error).message}`);
        }
        const r = rec as { text?: unknown; ids?: unknown };
        if (typeof r.text === 'string') inputs.push(encode(r.text));
        else if (Array.isArray(r.ids) && r.ids.every((x) => Number.isInteger(x)))
          inputs.push(r.ids as number[]);
        else throw new DataError(v.input!, i + 1, 'expected {"text": string} or {"ids": [int, ...]}');
      });
    }
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
    if (v.json) io.json(results.length === 1 && v.input === undefined ? results[0] : { sequences: results });
    return 0;
  },
});
