/**
 * Contrastive generative exploration (CGE, "What's New in My Data?"): generate examples from the
 * contrast of a fine-tuned model with its base (models/contrast.ts), surfacing what fine-tuning added.
 * The iterative variant runs `rounds` rounds: after each round the base is updated with the examples
 * generated so far — a short LoRA fine-tune of the original base on all of them (a fresh adapter each
 * round, the trainer's recipe: `update` steps, lr, rank) — and the next round contrasts the tuned
 * model with that updated base, so what was already shown stops standing out and later examples move
 * on to other novelties. Every example is reported with its contrast score, the mean over its tokens
 * of log p_tuned - log p_base under the original base (comparable across rounds). Seeded: sample j of
 * round r uses seed + r * n + j and the update of round r trains with seed + r.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../errors.ts';
import { type Tokenizer, writeTextAtomic } from '../io/index.ts';
import {
  type CausalLM,
  ContrastModel,
  contrastScore,
  DEFAULT_PLAUSIBILITY,
  generateBatch,
} from '../models/index.ts';
import { train, validateTrainConfig } from '../train/index.ts';

/** How the base is updated between rounds (a short LoRA fine-tune on the examples so far). */
export interface ExploreUpdateOptions {
  steps?: number;
  lr?: number;
  /** LoRA rank. */
  r?: number;
  batchSize?: number;
}

export interface ExploreOptions {
  /** The tuned model (its adapter applied) and the directory of its base, as loaded. */
  tuned: { model: CausalLM; name: string };
  base: { model: CausalLM; dir: string; name: string };
  tokenizer: Tokenizer;
  /** Examples per round. */
  n: number;
  /** Rounds (1 = plain CGE; more = iterative CGE). */
  rounds?: number;
  /** Prompt ids every example continues (default: the BOS token). */
  promptIds?: readonly number[];
  maxNewTokens?: number;
  /** Sampling temperature over the contrast (0 = greedy; default 1). */
  temperature?: number;
  /** Plausibility threshold alpha of the contrast (default 0.1). */
  plausibility?: number;
  seed?: number;
  eosTokenIds?: readonly number[];
  stopStrings?: readonly string[];
  update?: ExploreUpdateOptions;
  /** Folder for the rounds' update runs (default: a temp folder, removed at the end). */
  workDir?: string;
  onPhase?: (label: string, total: number) => void;
  onProgress?: (done: number) => void;
}

/** One generated example. */
export interface ExploredExample {
  round: number;
  index: number;
  text: string;
  ids: number[];
  /** Mean over its tokens of log p_tuned - log p_base (original base). */
  contrast_score: number;
}

/** Generate `n` examples per round for `rounds` rounds; see the file comment. */
export function exploreContrast(o: ExploreOptions): ExploredExample[] {
  const rounds = o.rounds ?? 1;
  if (!Number.isInteger(o.n) || o.n < 1) throw new UsageError(`--n: expected an integer >= 1, found ${o.n}`);
  if (!Number.isInteger(rounds) || rounds < 1)
    throw new UsageError(`--rounds: expected an integer >= 1, found ${rounds}`);
  const bos = o.tokenizer.bosTokenId ?? o.base.model.config.bosTokenId;
  const promptIds = o.promptIds ?? (bos !== null ? [bos] : []);
  if (promptIds.length === 0)
    throw new UsageError(
      `explore: ${o.base.name} has no BOS token to start examples from; give --prompt TEXT`,
    );
  const seed = o.seed ?? 0;
  const update = { steps: 20, lr: 1e-3, r: 8, batchSize: 4, ...o.update };
  const work = o.workDir ?? mkdtempSync(join(tmpdir(), 'attune-explore-'));
  const examples: ExploredExample[] = [];
  let current: CausalLM = o.base.model;
  try {
    for (let round = 0; round < rounds; round++) {
      o.onPhase?.(`round ${round + 1}/${rounds}: generate`, o.n);
      const contrast = new ContrastModel(
        { name: o.tuned.name, model: o.tuned.model, tokenizer: o.tokenizer },
        { name: o.base.name, model: current },
        o.plausibility ?? DEFAULT_PLAUSIBILITY,
      );
      const results = generateBatch(
        contrast,
        Array.from({ length: o.n }, (_, j) => ({
          promptIds,
          seed: seed + round * o.n + j,
        })),
        {
          maxNewTokens: o.maxNewTokens ?? 32,
          temperature: o.temperature ?? 1,
          eosTokenIds: o.eosTokenIds ?? o.tokenizer.eosTokenIds,
          stopStrings: o.stopStrings ?? [],
          tokenizer: o.tokenizer,
        },
      );
      results.forEach((g, index) => {
        const ids = g.stopReason === 'length' ? g.generatedIds : g.generatedIds.slice(0, -1);
        examples.push({
          round,
          index,
          text: g.text ?? '',
          ids,
          contrast_score: contrastScore(o.tuned.model, o.base.model, promptIds, ids),
        });
        o.onProgress?.(index + 1);
      });
      if (round + 1 < rounds) current = updatedBase(o, examples, round, work, update);
    }
  } finally {
    if (!o.workDir) rmSync(work, { recursive: true, force: true });
  }
  return examples;
}

/** The original base with a fresh LoRA fine-tuned on every example so far (round `round`'s update). */
function updatedBase(
  o: ExploreOptions,
  examples: readonly ExploredExample[],
  round: number,
  work: string,
  update: Required<ExploreUpdateOptions>,
): CausalLM {
  const dir = join(work, `round-${round + 1}`);
  const data = join(dir, 'examples.jsonl');
  mkdirSync(dir, { recursive: true });
  const texts = examples.filter((e) => e.text.trim() !== '').map((e) => ({ text: e.text }));
  if (texts.length === 0) return o.base.model;
  writeTextAtomic(data, `${texts.map((t) => JSON.stringify(t)).join('\n')}\n`);
  const config = validateTrainConfig(
    {
      model: o.base.dir,
      data: { train: data, max_length: (o.maxNewTokens ?? 32) + 8 },
      method: 'lora',
      lora: { r: update.r, lora_alpha: 2 * update.r },
      train: {
        steps: update.steps,
        batch_size: Math.min(update.batchSize, texts.length),
        lr: update.lr,
        seed: (o.seed ?? 0) + round,
      },
      output_dir: join(dir, 'run'),
    },
    `explore: round ${round + 1} base update`,
  );
  o.onPhase?.(`round ${round + 1}: update the base on ${texts.length} examples`, update.steps);
  const trained = train(config, {
    overwrite: true,
    onEvent: (e) => {
      if (e.type === 'step') o.onProgress?.(e.metrics.step);
    },
  });
  trained.model.eval();
  return trained.model;
}
