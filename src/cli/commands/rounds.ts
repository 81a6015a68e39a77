/** `attune rounds CONFIG.yaml`: self-improvement rounds — on-policy DPO pairs, UPO, LiST self-training, MCTS step pairs. */

import {
  describeRoundKinds,
  describeRoundsCommon,
  listRewards,
  loadRoundsConfig,
  makeReward,
  readRoundPrompts,
  runRounds,
} from '../../train/rounds/index.ts';
import { TrainingInterrupted } from '../../train/trainer.ts';
import '../../uq/upo-judge.ts';
import { importOption, jsonOption } from '../args.ts';
import { defineCommand } from '../command.ts';
import { importPlugins } from '../plugins.ts';
import { type Progress, progress } from '../progress.ts';

const options = {
  set: {
    type: 'string',
    multiple: true,
    description: 'override a config field: --set rounds.rounds=3 --set train.lr=2e-4 (repeatable)',
    valueName: '<key=value>',
  },
  resume: {
    type: 'boolean',
    description: 'skip the finished rounds (rounds.json) and continue the next one',
  },
  overwrite: { type: 'boolean', description: 'replace an existing output_dir' },
  import: importOption,
  json: jsonOption,
} as const;

/** `words` joined by `sep`, wrapped at 100 columns; lines after the first start with `indent`. */
function wrap(words: readonly string[], sep: string, indent: string, first = ''): string {
  const lines: string[] = [];
  let line = first;
  let fresh = true; // no word on this line yet
  for (const word of words) {
    const next = fresh ? `${line}${word}` : `${line}${sep}${word}`;
    if (next.length > 100 && !fresh) {
      lines.push(`${line}${sep.trimEnd()}`);
      line = `${indent}${word}`;
    } else line = next;
    fresh = false;
  }
  lines.push(line);
  return lines.join('\n');
}

/** `key: default` of each top-level option row (`key` alone when required, `key: {a, ...}` for an object). */
function optionItems(rows: readonly { key: string; default: string }[]): string[] {
  return rows
    .filter((r) => !r.key.includes('.'))
    .map((r) => {
      if (r.default === 'required') return r.key;
      if (r.default !== '') return `${r.key}: ${r.default}`;
      const inner = rows
        .filter((s) => s.key.startsWith(`${r.key}.`))
        .map((s) => s.key.slice(r.key.length + 1));
      return `${r.key}: {${[...inner, '...'].join(', ')}}`;
    });
}

/** The --help text, from the kind and reward registries. */
function roundsHelp(): string {
  const kinds = describeRoundKinds();
  const common = describeRoundsCommon().map((r) =>
    r.key === 'kind' ? { ...r, default: kinds.map((k) => k.name).join('|') } : r,
  );
  const kindLines = kinds.map((k) => {
    const text = wrap(`${k.name}: ${k.description}.`.split(' '), ' ', '    ', '  ');
    return k.options.length === 0 ? text : `${text}\n${wrap(optionItems(k.options), ', ', '    ', '    ')}`;
  });
  return `A training config (the recipe of every round; output_dir is the rounds' root) plus
${wrap([...optionItems(common), "and the kind's options (below)}"], ', ', '           ', '  rounds: {')}
Each round samples from the current policy (round 1: the config's model), builds its training data,
trains the config's method and loss on it and merges the result into the next policy
(output_dir/round-<r>/policy). Kinds (rounds.kind) and their options:
${kindLines.join('\n')}
Rewards: ${listRewards()
    .map((r) => `${r.name} (${r.description})`)
    .join('; ')}. See docs/training.md and docs/config.md.`;
}

/** `attune rounds CONFIG.yaml [--set k=v ...] [--resume] [--overwrite] [--json]`. */
export const roundsCommand = defineCommand({
  name: 'rounds',
  summary:
    'Self-improvement rounds: on-policy preference pairs + DPO, UPO, LiST self-training, MCTS step pairs',
  positionals: [
    { name: 'config.yaml', description: 'a train config (docs/config.md) plus rounds: {kind, prompts, ...}' },
  ],
  // a getter: kinds and rewards registered after this module loaded (plug-ins) are listed too
  get description() {
    return roundsHelp();
  },
  options,
  examples: ['attune rounds rounds.yaml', 'attune rounds rounds.yaml --set rounds.rounds=3 --resume --json'],
  async run(args, io) {
    await importPlugins(args.values.import);
    const config = loadRoundsConfig(args.positionals[0]!, args.values.set);
    const prompts = readRoundPrompts(config.prompts);
    const reward = config.reward ? makeReward(config.reward) : undefined;
    const stream = { write: (t: string) => io.err(t), isTTY: io.stderrIsTTY };
    let bar = null as Progress | null;
    const controller = new AbortController();
    const onSignal = (signal: NodeJS.Signals) => {
      bar?.stop();
      io.note(`rounds: ${signal}: saving a checkpoint after the current step (again to stop at once)`);
      controller.abort();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    let summaries: Awaited<ReturnType<typeof runRounds>>;
    try {
      summaries = await runRounds(config.train, config.spec, prompts, {
        reward,
        labelled: config.labelled,
        resume: args.values.resume,
        overwrite: args.values.overwrite,
        signal: controller.signal,
        onEvent: (e) => {
          if (e.type === 'skipped') io.note(`rounds: round ${e.round} already finished`);
          else if (e.type === 'round-start')
            io.note(
              `rounds: round ${e.round}/${e.rounds}: sampling ${prompts.length} prompts from ${e.policy}`,
            );
          else if (e.type === 'sampled') io.note(`rounds: round ${e.round}: ${e.samples} samples graded`);
          else if (e.type === 'searched') {
            if (e.done === 1) bar = progress({ label: `round ${e.round} search`, total: e.total, stream });
            bar?.update(e.done);
            if (e.done === e.total) {
              bar?.stop();
              bar = null;
            }
          } else if (e.type === 'round-done') {
            const s = e.summary;
            io.note(
              `rounds: round ${s.round}: ${s.kept} of ${s.candidates} kept${s.nodes !== undefined ? ` (${s.nodes} nodes expanded)` : ''}, mean score ${s.mean_score.toFixed(4)}, final loss ${s.final_loss.toFixed(4)}`,
            );
          } else {
            const t = e.event;
            if (t.type === 'start') {
              bar = progress({ label: `round ${e.round}`, total: t.totalSteps, stream });
              bar.update(t.startStep);
            } else if (t.type === 'step') bar?.update(t.metrics.step, { loss: t.metrics.loss });
            else if (t.type === 'done') {
              bar?.stop();
              bar = null;
            }
          }
        },
      });
    } catch (error) {
      if (!(error instanceof TrainingInterrupted)) throw error;
      bar?.stop();
      io.note(`rounds: interrupted; continue with 'attune rounds ${args.positionals[0]!} --resume'`);
      return 130;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    const last = summaries.at(-1);
    io.line(`${summaries.length} rounds (${config.spec.kind}); final policy: ${last?.policy ?? 'none'}`);
    if (args.values.json)
      io.json({ kind: config.spec.kind, output_dir: config.train.output_dir, rounds: summaries });
    return 0;
  },
});
