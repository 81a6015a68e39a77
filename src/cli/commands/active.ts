/** `attune active CONFIG.yaml`: active learning — rounds of query -> label -> LoRA fine-tune (STAR and baselines). */

import { ConfigError } from '../../errors.ts';
import { loadModel } from '../../models/index.ts';
import { loadAdapter } from '../../peft/index.ts';
import { TrainingInterrupted, trainAsync } from '../../train/trainer.ts';
import {
  activeStrategies,
  greedyAccuracy,
  labelBudget,
  loadActiveConfig,
  readEvalRecords,
  runActive,
  type ScoringModel,
} from '../../uq/index.ts';
import { activeOracle, activePool } from '../../world/index.ts';
import { importOption, jsonOption } from '../args.ts';
import { defineCommand } from '../command.ts';
import { importPlugins } from '../plugins.ts';
import { type Progress, progress } from '../progress.ts';

const options = {
  set: {
    type: 'string',
    multiple: true,
    description: 'override a config field: --set rounds=4 --set per_round=10 (repeatable)',
    valueName: '<key=value>',
  },
  overwrite: { type: 'boolean', description: 'replace an out folder written with other settings' },
  import: importOption,
  json: jsonOption,
} as const;

/** `attune active CONFIG.yaml [--set k=v ...] [--overwrite] [--json]`. */
export const activeCommand = defineCommand({
  name: 'active',
  summary:
    'Active learning: rounds of query -> label -> LoRA fine-tune (STAR, random, entropy, least confidence)',
  positionals: [
    {
      name: 'config.yaml',
      description: 'a train config (docs/config.md) plus pool, oracle, strategy, rounds, ...',
    },
  ],
  description: `A training config (the recipe of every round; method lora) plus
  pool: {world: DIR, seed: 0} | {file: pool.jsonl}    oracle: {name: world, world: DIR} | {name: jsonl, file: labels.jsonl}
  strategy: star | random | entropy | least_confidence    rounds: 3    per_round: 20    seed_labels: 20
  mc_dropout: {passes: 3, p: 0.1}    eval: eval.jsonl (optional)    max_new_tokens: 16    seed: 0    out: DIR
Round 0 labels seed_labels random questions; each query round scores the unlabeled pool with the
strategy and labels the top per_round; every round trains a fresh adapter from the base on all labels
so far and writes out/round-<k>/ (labels.jsonl, adapter/, metrics.json, done.json). A re-run with the
same settings skips the finished rounds. STAR's calibration constraint is the LoRA option
lora_b_weight_decay: 0.5. Strategies: ${activeStrategies
    .list()
    .map((s) => `${s.name} (${s.description})`)
    .join('; ')}. See docs/data.md.`,
  options,
  examples: [
    'attune active active.yaml',
    'attune active active.yaml --set strategy=random --set out=runs/random --json',
  ],
  async run(args, io) {
    await importPlugins(args.values.import);
    const config = loadActiveConfig(args.positionals[0]!, args.values.set);
    const pool = activePool(config.pool);
    const oracle = activeOracle(config.oracle);
    const evalRecords = config.eval ? readEvalRecords(config.eval) : null;
    if (typeof config.train.model !== 'string')
      throw new ConfigError('active: model must be a model directory, found a random-init spec');
    const baseDir = config.train.model;
    const load = (adapterDir: string | null): ScoringModel => {
      const m = loadModel(baseDir);
      if (!m.tokenizer) throw new ConfigError(`active: the model ${baseDir} has no tokenizer`);
      if (adapterDir) loadAdapter(m.model, adapterDir);
      m.model.eval();
      return { model: m.model, tokenizer: m.tokenizer, eosTokenIds: m.eosTokenIds };
    };
    const stream = { write: (t: string) => io.err(t), isTTY: io.stderrIsTTY };
    let bar = null as Progress | null;
    let barTotal = 0;
    const stopBar = () => {
      bar?.stop();
      bar = null;
    };
    const controller = new AbortController();
    const onSignal = (signal: NodeJS.Signals) => {
      stopBar();
      io.note(`active: ${signal}: saving a checkpoint after the current step`);
      controller.abort();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const budget = labelBudget(config.spec.seed_labels, config.spec.rounds, config.spec.per_round);
    io.note(
      `active: ${pool.length} pool questions, label budget ${budget}, strategy ${config.spec.strategy.name}`,
    );
    let summaries: Awaited<ReturnType<typeof runActive>>;
    try {
      summaries = await runActive(
        config.train,
        config.spec,
        pool,
        oracle,
        async (request) => {
          const result = await trainAsync(request.config, {
            resume: request.resume,
            overwrite: !request.resume,
            signal: controller.signal,
            onEvent: (t) => {
              if (t.type === 'start') {
                stopBar();
                bar = progress({ label: `round ${request.round} train`, total: t.totalSteps, stream });
                bar.update(t.startStep);
              } else if (t.type === 'step') bar?.update(t.metrics.step, { loss: t.metrics.loss });
              else if (t.type === 'done') stopBar();
            },
          });
          return { adapterDir: result.adapterDir, finalLoss: result.finalLoss };
        },
        {
          loadModel: load,
          evaluate: evalRecords
            ? (adapterDir) => ({
                accuracy: greedyAccuracy(load(adapterDir), evalRecords, config.spec.max_new_tokens),
              })
            : undefined,
          overwrite: args.values.overwrite,
          onEvent: (e) => {
            if (e.type === 'skipped') io.note(`active: round ${e.round} already finished`);
            else if (e.type === 'round-start') io.note(`active: round ${e.round}/${e.rounds}`);
            else if (e.type === 'scoring') {
              stopBar();
              barTotal = e.total;
              bar = progress({ label: `round ${e.round} ${e.label}`, total: e.total, stream });
            } else if (e.type === 'scored') {
              bar?.update(e.done);
              if (e.done >= barTotal) stopBar();
            } else {
              stopBar();
              const s = e.summary;
              const m = Object.entries(s.metrics)
                .map(([k, v]) => `, ${k} ${v.toFixed(4)}`)
                .join('');
              io.note(
                `active: round ${s.round}: ${s.labels} labels (${s.oracle_calls} oracle calls), final loss ${s.final_loss.toFixed(4)}${m}`,
              );
            }
          },
        },
      );
    } catch (error) {
      stopBar();
      if (!(error instanceof TrainingInterrupted)) throw error;
      io.note(`active: interrupted; run 'attune active ${args.positionals[0]!}' again to continue`);
      return 130;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    stopBar();
    const last = summaries.at(-1);
    const calls = summaries.reduce((s, r) => s + r.oracle_calls, 0);
    io.line(
      `${summaries.length} rounds (${config.spec.strategy.name}); ${last?.labels ?? 0} labels, ${calls} oracle calls; last adapter: ${last?.adapter ?? 'none'}`,
    );
    if (args.values.json)
      io.json({
        strategy: config.spec.strategy.name,
        out: config.train.output_dir,
        labels: last?.labels ?? 0,
        oracle_calls: calls,
        rounds: summaries,
      });
    return 0;
  },
});
