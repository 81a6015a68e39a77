/**
 * Greedy soup (Wortsman et al., "Model soups"): order the ingredients by held-out score, start the
 * soup with the best, and add each next ingredient only if the uniform average of the soup with it
 * scores strictly better. The score here is the mean NLL of the supervised tokens of an eval JSONL
 * file (lower is better), computed with a model forward (models/ + data/ + train/'s evaluateLoss).
 *
 * Unlike every other method this loads whole models: one f32 model for the forward passes, filled
 * tensor by tensor with the average being tried. It is meant for small models; the merged output
 * itself is then streamed as a linear merge of the accepted ingredients.
 */

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DataLoader, loadDataset, padTokenIdOf } from '../data/index.ts';
import { ConfigError } from '../errors.ts';
import { TOKENIZER_FILE, Tokenizer } from '../io/index.ts';
import { buildModel, type CausalLM } from '../models/index.ts';
import { evaluateLoss, type MicroBatch } from '../train/step.ts';
import type { MergePlan } from './plan.ts';

/** One step of the selection. */
export interface GreedySoupStep {
  /** Index in the config's `models`. */
  model: number;
  /** The model's reference as written. */
  ref: string;
  /** Eval loss of the ingredient alone. */
  loss: number;
  /** Eval loss of the soup with this ingredient added (the first ingredient: its own loss). */
  soupLoss: number;
  accepted: boolean;
}

/** What greedy soup selected. */
export interface GreedySoupReport {
  /** Ingredients in the order tried (best individual loss first). */
  steps: GreedySoupStep[];
  /** Indices (in `models`) of the accepted ingredients. */
  accepted: number[];
  /** Eval loss of the final soup. */
  loss: number;
}

/** The result of `greedySoupSelect`. */
export interface GreedySoupSelection {
  /** Ingredient indices, best individual loss first (stable for equal losses). */
  order: number[];
  /** Loss of each ingredient alone, by index. */
  individual: number[];
  /** Accepted indices, in the order added. */
  accepted: number[];
  /** Per ingredient in `order`: the loss of the soup it was tried in, and whether it stayed. */
  tried: { index: number; soupLoss: number; accepted: boolean }[];
  /** Loss of the final soup. */
  loss: number;
}

/**
 * The greedy soup rule over `count` ingredients: `evaluate(members)` is the loss of the uniform
 * average of those ingredients (lower is better). An ingredient joins only on a strictly lower loss.
 */
export function greedySoupSelect(
  count: number,
  evaluate: (members: readonly number[]) => number,
): GreedySoupSelection {
  if (count < 1) throw new RangeError('greedySoupSelect: no ingredients');
  const individual = Array.from({ length: count }, (_, i) => evaluate([i]));
  const order = individual.map((_, i) => i).sort((a, b) => individual[a]! - individual[b]! || a - b);
  const accepted = [order[0]!];
  let best = individual[order[0]!]!;
  const tried = [{ index: order[0]!, soupLoss: best, accepted: true }];
  for (const index of order.slice(1)) {
    const loss = evaluate([...accepted, index]);
    const better = loss < best;
    if (better) {
      accepted.push(index);
      best = loss;
    }
    tried.push({ index, soupLoss: loss, accepted: better });
  }
  return { order, individual, accepted, tried, loss: best };
}

/** Fill `model`'s parameters with the uniform average of the plan entries `members`. */
function loadAverage(model: CausalLM, plan: MergePlan, members: readonly number[]): void {
  for (const [name, p] of model.namedParameters()) {
    const target = p.data as Float32Array;
    const sum = new Float64Array(target.length);
    for (const m of members) {
      const values = plan.entries[m]!.source.read(name);
      for (let j = 0; j < values.length; j++) sum[j]! += values[j]!;
    }
    for (let j = 0; j < target.length; j++) target[j] = sum[j]! / members.length;
  }
}

/** Select the ingredients of a planned greedy_soup merge (see the file comment). */
export function runGreedySoupSelection(plan: MergePlan, note?: (line: string) => void): GreedySoupReport {
  const evalSpec = plan.config.eval;
  if (!evalSpec) throw new ConfigError(`${plan.config.source}: greedy_soup needs 'eval: {data: FILE.jsonl}'`);
  const dir = plan.layout.ref.dir;
  if (!existsSync(join(dir, TOKENIZER_FILE))) {
    throw new ConfigError(`greedy_soup: ${dir} has no ${TOKENIZER_FILE} to tokenize the eval data with`);
  }
  const tokenizer = Tokenizer.fromDir(dir);
  const data = loadDataset(evalSpec.data, tokenizer, { maxLength: evalSpec.maxLength, report: note });
  const model = buildModel(plan.layout.config, { init: 'zeros', dtype: 'f32' }, join(dir, 'config.json'));
  model.eval();
  const padTokenId = padTokenIdOf(tokenizer);
  const evaluate = (members: readonly number[]): number => {
    loadAverage(model, plan, members);
    const loader = new DataLoader(data.examples, {
      batchSize: evalSpec.batchSize,
      padTokenId,
      shuffle: false,
    });
    const batches: MicroBatch[] = [];
    const all: { dispose(): void }[] = [];
    for (let i = 0; i < loader.batchesPerEpoch(); i++) {
      const b = loader.next();
      batches.push({ inputIds: b.inputIds, labels: b.labels });
      all.push(b.inputIds, b.labels, b.attentionMask);
    }
    try {
      return evaluateLoss(model, batches).loss;
    } finally {
      for (const t of all) t.dispose();
    }
  };
  const selection = greedySoupSelect(plan.entries.length, evaluate);
  const steps = selection.tried.map(({ index, soupLoss, accepted }) => {
    const e = plan.entries[index]!;
    const step = {
      model: e.index,
      ref: e.entry.ref.text,
      loss: selection.individual[index]!,
      soupLoss,
      accepted,
    };
    note?.(
      `greedy_soup: ${step.ref}: loss ${step.loss.toFixed(4)}, soup ${soupLoss.toFixed(4)} -> ${accepted ? 'accepted' : 'rejected'}`,
    );
    return step;
  });
  return {
    steps,
    accepted: selection.accepted.map((i) => plan.entries[i]!.index).sort((a, b) => a - b),
    loss: selection.loss,
  };
}
