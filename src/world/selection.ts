/**
 * A pre-fine-tuning data-selection task in the world: a candidate pool that mixes the target domain
 * (every training wording of the facts of a seeded subset of the taught people, the "target
 * people") with off-target records (the same for the other taught people), general text (documents
 * of the pretraining corpus: biographies of known people, geography) and noise (letter soup, QA
 * pairs with shuffled words); a small target sample (one canonical question and answer per target
 * person, for one seeded relation each); and the target-domain evaluation questions (every
 * relation of every target person, canonical wording). The sample's facts are 1/7 of the
 * evaluated ones: a selector sees what the target domain looks like, not most of its answers.
 * The ground truth of every candidate line (its kind) is kept so a selection can be scored.
 */
import { join } from 'node:path';
import { writeTextAtomic } from '../io/atomic.ts';
import { Rng } from '../tensor/rng.ts';
import { peopleIn, RELATIONS, relationValue, type World } from './generate.ts';
import { type EvalRecord, renderEvalSplit, renderPretrainDocuments, trainingQuestions } from './render.ts';
import { qaPrompt } from './templates.ts';

/** What a candidate line is. */
export type CandidateKind = 'target' | 'off_target' | 'general' | 'noise';

/** The candidate kinds, in the order they are counted. */
export const CANDIDATE_KINDS: readonly CandidateKind[] = ['target', 'off_target', 'general', 'noise'];

/** The ground truth of one candidate line. */
export interface CandidateTruth {
  /** 1-based line in the candidates file. */
  line: number;
  kind: CandidateKind;
  /** The person a QA record asks about ('' for general text and noise). */
  entity: string;
}

/** How the selection task is drawn. */
export interface SelectionTaskOptions {
  /** Seed of the target people, the sample's relations, the general documents, the noise and the order. */
  seed: number;
  /** Fraction of the taught people that make up the target domain (default 1/3). */
  targetFraction?: number;
  /** General documents per target record (default 0.5). */
  generalRatio?: number;
  /** Noise records per target record (default 0.25). */
  noiseRatio?: number;
}

/** A rendered selection task: JSONL lines (no newlines) and the truth of the candidates, line for line. */
export interface SelectionTask {
  candidates: string[];
  truth: CandidateTruth[];
  /** The small target-domain sample ({prompt, completion} lines). */
  target: string[];
  /** The target-domain evaluation questions. */
  eval: EvalRecord[];
  /** The target people's names. */
  targetPeople: string[];
}

const LETTERS = 'abcdefghijklmnopqrstuvwxyz';

/** A line of letter soup: `words` pseudo-words of 2..8 letters. */
function letterSoup(rng: Rng, words: number): string {
  const out: string[] = [];
  for (let w = 0; w < words; w++) {
    const n = 2 + rng.int(7);
    let s = '';
    for (let i = 0; i < n; i++) s += LETTERS[rng.int(LETTERS.length)];
    out.push(s);
  }
  return out.join(' ');
}

/**
 * The selection task of `world` (see the file comment). Same world and options give the same
 * lines; the candidates are shuffled so the kinds are interleaved.
 */
export function renderSelectionTask(world: World, options: SelectionTaskOptions): SelectionTask {
  const targetFraction = options.targetFraction ?? 1 / 3;
  const generalRatio = options.generalRatio ?? 0.5;
  const noiseRatio = options.noiseRatio ?? 0.25;
  if (!(targetFraction > 0 && targetFraction < 1))
    throw new RangeError(`targetFraction must be in (0, 1), found ${targetFraction}`);
  if (!(generalRatio >= 0) || !(noiseRatio >= 0))
    throw new RangeError('generalRatio and noiseRatio must be >= 0');
  const rng = new Rng(options.seed);
  const taught = peopleIn(world, 'taught');
  const targetCount = Math.max(1, Math.min(taught.length - 1, Math.round(taught.length * targetFraction)));
  const targetSet = new Set(
    rng
      .shuffle([...taught])
      .slice(0, targetCount)
      .map((p) => p.name),
  );
  const pool: { object: Record<string, unknown>; kind: CandidateKind; entity: string }[] = [];
  for (const person of taught) {
    const kind: CandidateKind = targetSet.has(person.name) ? 'target' : 'off_target';
    for (const relation of RELATIONS)
      for (const question of trainingQuestions(person, relation))
        pool.push({
          object: { prompt: qaPrompt(question), completion: ` ${relationValue(person, relation)}` },
          kind,
          entity: person.name,
        });
  }
  const targetRecords = pool.filter((p) => p.kind === 'target').length;
  const general = rng
    .shuffle(renderPretrainDocuments(world))
    .slice(0, Math.round(targetRecords * generalRatio));
  for (const text of general) pool.push({ object: { text }, kind: 'general', entity: '' });
  const noise = Math.round(targetRecords * noiseRatio);
  for (let i = 0; i < noise; i++) {
    if (i % 2 === 0)
      pool.push({ object: { text: letterSoup(rng, 6 + rng.int(10)) }, kind: 'noise', entity: '' });
    else {
      // a QA pair whose question words are shuffled and whose answer is letter soup
      const person = taught[rng.int(taught.length)]!;
      const relation = RELATIONS[rng.int(RELATIONS.length)]!;
      const words = rng.shuffle(trainingQuestions(person, relation)[0]!.split(' '));
      pool.push({
        object: { prompt: qaPrompt(words.join(' ')), completion: ` ${letterSoup(rng, 2)}` },
        kind: 'noise',
        entity: '',
      });
    }
  }
  const order = rng.shuffle(pool);
  const targetPeople = taught.filter((p) => targetSet.has(p.name));
  const target = targetPeople.map((person) => {
    const relation = RELATIONS[rng.int(RELATIONS.length)]!;
    return JSON.stringify({
      prompt: qaPrompt(trainingQuestions(person, relation)[0]!),
      completion: ` ${relationValue(person, relation)}`,
    });
  });
  return {
    candidates: order.map((p) => JSON.stringify(p.object)),
    truth: order.map((p, i) => ({ line: i + 1, kind: p.kind, entity: p.entity })),
    target,
    eval: renderEvalSplit(world, 'taught').filter((r) => targetSet.has(r.entity)),
    targetPeople: targetPeople.map((p) => p.name),
  };
}

/** Per kind: how many of the `selectedLines` (1-based) are of that kind. */
export function countSelectedKinds(
  truth: readonly CandidateTruth[],
  selectedLines: Iterable<number>,
): Record<CandidateKind, number> {
  const byLine = new Map(truth.map((t) => [t.line, t.kind]));
  const counts: Record<CandidateKind, number> = { target: 0, off_target: 0, general: 0, noise: 0 };
  for (const line of selectedLines) {
    const kind = byLine.get(line);
    if (kind !== undefined) counts[kind]++;
  }
  return counts;
}

/** The files `writeSelectionTask` writes into its folder. */
export const SELECTION_FILES = {
  candidates: 'candidates.jsonl',
  truth: 'candidates.truth.jsonl',
  target: 'target.jsonl',
  eval: 'eval_target.jsonl',
} as const;

/** Write the task's four files into `dir` (which must exist), each atomically; returns their paths. */
export function writeSelectionTask(
  task: SelectionTask,
  dir: string,
): Record<keyof typeof SELECTION_FILES, string> {
  const lines = (xs: readonly string[]) => xs.map((l) => `${l}\n`).join('');
  const paths = {
    candidates: join(dir, SELECTION_FILES.candidates),
    truth: join(dir, SELECTION_FILES.truth),
    target: join(dir, SELECTION_FILES.target),
    eval: join(dir, SELECTION_FILES.eval),
  };
  writeTextAtomic(paths.candidates, lines(task.candidates));
  writeTextAtomic(paths.truth, lines(task.truth.map((t) => JSON.stringify(t))));
  writeTextAtomic(paths.target, lines(task.target));
  writeTextAtomic(paths.eval, lines(task.eval.map((r) => JSON.stringify(r))));
  return paths;
}
