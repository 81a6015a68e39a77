/**
 * Rewards of the self-improvement rounds (rounds.ts), by name: `rounds.reward: {name, ...options}`.
 * Built in: `rule` (1 when the sample's first line equals the prompt's gold `answer` up to case,
 * spacing and trailing punctuation, the S3FT judge; else 0) and `labels` (a JSONL of
 * `{prompt, response, reward}`: every sample must be labelled) and `final_answer` (1 when the text
 * after the last "answer is" of a multi-step answer equals the gold `answer`; the outcome signal
 * of the mcts kind on the world's stepped arithmetic). The MC-dropout `judge` registers
 * itself from uq/upo-judge.ts. A new reward is a new file calling `registerReward`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { equivalentAnswers } from '../../data/self-to-supervised.ts';
import { AttuneError, ConfigError, DataError } from '../../errors.ts';
import type { RewardFn, RoundPrompt } from './rounds.ts';

export interface RewardDefinition {
  name: string;
  description: string;
  /** Build the reward from its options (the fields of rounds.reward besides name). */
  make(options: Record<string, unknown>, where: string): RewardFn;
}

const rewards = new Map<string, RewardDefinition>();

/** Register a reward under its name (an error if taken). */
export function registerReward(definition: RewardDefinition): void {
  if (rewards.has(definition.name)) throw new AttuneError(`reward '${definition.name}' is registered twice`);
  rewards.set(definition.name, definition);
}

/** The registered rewards' names and descriptions. */
export function listRewards(): { name: string; description: string }[] {
  return [...rewards.values()].map(({ name, description }) => ({ name, description }));
}

/** Build the reward `spec` names ({name, ...options}); ConfigError for an unknown name. */
export function makeReward(
  spec: { name: string } & Record<string, unknown>,
  where = 'rounds.reward',
): RewardFn {
  const definition = rewards.get(spec.name);
  if (!definition)
    throw new ConfigError(
      `${where}.name: expected one of ${[...rewards.keys()].map((n) => `'${n}'`).join(', ')}, found '${spec.name}'`,
    );
  const { name: _name, ...options } = spec;
  return definition.make(options, where);
}

function noOptions(options: Record<string, unknown>, where: string, allowed: string[]): void {
  const extra = Object.keys(options).filter((k) => !allowed.includes(k));
  if (extra.length > 0)
    throw new ConfigError(
      `${where}: unknown option(s) ${extra.join(', ')}; expected ${allowed.join(', ') || 'none'}`,
    );
}

/** The gold answer of `item`, or a DataError naming its line. */
function goldOf(item: RoundPrompt, reward = 'rule'): string {
  if (item.answer === undefined)
    throw new DataError(
      'rounds.prompts',
      item.line,
      `reward '${reward}' needs an 'answer' field on every prompt`,
    );
  return item.answer;
}

registerReward({
  name: 'rule',
  description:
    "1 if the sample's first line equals the prompt's answer (case, spacing, end punctuation aside), else 0",
  make(options, where) {
    noOptions(options, where, []);
    return (_policy, samples) =>
      samples.map((s) => ({ reward: equivalentAnswers(goldOf(s.item), s.response) ? 1 : 0 }));
  },
});

registerReward({
  name: 'labels',
  description:
    'rewards read from a JSONL of {prompt, response, reward} (option file); every sample must be labelled',
  make(options, where) {
    noOptions(options, where, ['file']);
    const file = options.file;
    if (typeof file !== 'string')
      throw new ConfigError(`${where}.file: expected a JSONL path, found ${JSON.stringify(file)}`);
    if (!existsSync(file)) throw new ConfigError(`${where}.file: file not found: ${file}`);
    const labels = new Map<string, number>();
    readFileSync(file, 'utf8')
      .split('\n')
      .forEach((text, i) => {
        if (text.trim() === '') return;
        let o: Record<string, unknown>;
        try {
          o = JSON.parse(text) as Record<string, unknown>;
        } catch (e) {
          throw new DataError(file, i + 1, `expected {prompt, response, reward}: ${(e as Error).message}`);
        }
        if (typeof o?.prompt !== 'string' || typeof o.response !== 'string')
          throw new DataError(file, i + 1, 'expected string fields prompt and response');
        if (typeof o.reward !== 'number' || !Number.isFinite(o.reward))
          throw new DataError(
            file,
            i + 1,
            `field 'reward' must be a finite number, found ${JSON.stringify(o.reward)}`,
          );
        labels.set(`${o.prompt}\u0000${o.response.trim()}`, o.reward);
      });
    return (_policy, samples) =>
      samples.map((s) => {
        const reward = labels.get(`${s.item.prompt}\u0000${s.response.trim()}`);
        if (reward === undefined)
          throw new AttuneError(
            `${where}: ${file} has no label for prompt ${JSON.stringify(s.item.prompt)} response ${JSON.stringify(s.response.trim())}`,
          );
        return { reward };
      });
  },
});

/** The final answer of a multi-step response: what follows the last `marker`, end "." dropped; null if none. */
export function finalAnswerOf(response: string, marker = 'answer is'): string | null {
  const line = response.split('\n')[0]!;
  const at = line.lastIndexOf(marker);
  if (at < 0) return null;
  const answer = line
    .slice(at + marker.length)
    .trim()
    .replace(/\.$/, '')
    .trim();
  return answer === '' ? null : answer;
}

registerReward({
  name: 'final_answer',
  description:
    "1 if the text after the last 'answer is' (option marker) equals the prompt's answer, else 0 (multi-step answers)",
  make(options, where) {
    noOptions(options, where, ['marker']);
    const marker = options.marker ?? 'answer is';
    if (typeof marker !== 'string' || marker === '')
      throw new ConfigError(`${where}.marker: expected a non-empty string, found ${JSON.stringify(marker)}`);
    return (_policy, samples) =>
      samples.map((s) => ({
        reward: finalAnswerOf(s.response, marker) === goldOf(s.item, 'final_answer').trim() ? 1 : 0,
      }));
  },
});
