/**
 * The world's preference pairs (for DPO, data/preference.ts) and its abstention answer.
 *
 * Questions about unknown people have no right answer (grade.ts: any answer is a hallucination);
 * the honest reply is the abstention `I don't know`. The pairs:
 * - unknown people of the *training half* (every other family, in world order): chosen
 *   ` I don't know`, rejected a hallucinated fact (a value of the same relation that another person
 *   has, drawn by a seeded Rng);
 * - taught people: chosen the fact, rejected a wrong value of the same relation.
 * The unknown people of the other half are never in any pair: their questions
 * (eval_unknown_heldout.jsonl) measure whether abstention generalises to people not trained on.
 * Prompts are the canonical questions `Q: ...\nA:` (optionally also the training paraphrases),
 * completions start with one space as in finetune.jsonl. The SFT counterpart (the same prompts
 * with the chosen answer as completion) is written too, for comparing DPO with CE on equal data.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeTextAtomic } from '../io/atomic.ts';
import { Rng } from '../tensor/rng.ts';
import { type Person, peopleIn, RELATIONS, type Relation, relationValue, type World } from './generate.ts';
import { extractAnswer } from './grade.ts';
import { type EvalRecord, renderEvalSplit, trainingQuestions } from './render.ts';
import { fill, QUESTION_TEMPLATES, qaPrompt } from './templates.ts';
import { toJsonl } from './write.ts';

/** The world's abstention answer (the reply to a question about someone the model does not know). */
export const ABSTENTION_ANSWER = "I don't know";

/**
 * Whether a generated continuation abstains: its answer (first line) is `I don't know`, compared on
 * letters only and case-insensitively (so `I don ' t know.` from a word-level decoder counts).
 */
export function isAbstention(generated: string): boolean {
  const letters = (s: string) => s.toLowerCase().replace(/[^a-z]/g, '');
  return letters(extractAnswer(generated)) === letters(ABSTENTION_ANSWER);
}

/** One preference pair of the world, with where it came from. */
export interface WorldPreferencePair {
  prompt: string;
  chosen: string;
  rejected: string;
  split: 'taught' | 'unknown';
  entity: string;
  relation: Relation;
}

export interface PreferencePairsOptions {
  /** Seed of the wrong-answer draws (default 0). */
  seed?: number;
  /** Also pair the training paraphrases of each question (default false: canonical wording only). */
  paraphrases?: boolean;
}

/** The unknown people split by family: `train` (families 0, 2, 4, ...) in pairs, `heldOut` never. */
export function abstentionPeople(world: World): { train: Person[]; heldOut: Person[] } {
  const unknown = peopleIn(world, 'unknown');
  const family = new Map<string, number>();
  for (const p of unknown) if (!family.has(p.lastName)) family.set(p.lastName, family.size);
  const isTrain = (p: Person) => family.get(p.lastName)! % 2 === 0;
  return { train: unknown.filter(isTrain), heldOut: unknown.filter((p) => !isTrain(p)) };
}

/** A value of `relation` that some person of the world has and `person` has not. */
function wrongValue(world: World, person: Person, relation: Relation, rng: Rng): string {
  const right = relationValue(person, relation);
  const candidates = [...new Set(world.people.map((p) => relationValue(p, relation)))].filter(
    (v) => v !== right && v !== person.name,
  );
  return candidates[rng.int(candidates.length)]!;
}

/** The preference pairs of `world` (see the file comment), taught people first, then unknown ones. */
export function renderPreferencePairs(
  world: World,
  options: PreferencePairsOptions = {},
): WorldPreferencePair[] {
  const rng = new Rng(options.seed ?? 0);
  const questions = (person: Person, relation: Relation): string[] =>
    options.paraphrases
      ? trainingQuestions(person, relation)
      : [fill(QUESTION_TEMPLATES[relation].canonical, { name: person.name })];
  const pairs: WorldPreferencePair[] = [];
  const add = (person: Person, split: 'taught' | 'unknown', chosen: (r: Relation) => string) => {
    for (const relation of RELATIONS) {
      for (const question of questions(person, relation)) {
        pairs.push({
          prompt: qaPrompt(question),
          chosen: ` ${chosen(relation)}`,
          rejected: ` ${wrongValue(world, person, relation, rng)}`,
          split,
          entity: person.name,
          relation,
        });
      }
    }
  };
  for (const person of peopleIn(world, 'taught')) add(person, 'taught', (r) => relationValue(person, r));
  for (const person of abstentionPeople(world).train) add(person, 'unknown', () => ABSTENTION_ANSWER);
  return pairs;
}

/** Questions about the held-out unknown people (in no pair), as eval records. */
export function heldOutUnknownQuestions(world: World): EvalRecord[] {
  const heldOut = new Set(abstentionPeople(world).heldOut.map((p) => p.name));
  return renderEvalSplit(world, 'unknown').filter((r) => heldOut.has(r.entity));
}

/** File names `writePreferencePairs` writes. */
export const PREFERENCE_FILES = {
  pairs: 'preference_pairs.jsonl',
  sft: 'preference_sft.jsonl',
  heldOut: 'eval_unknown_heldout.jsonl',
} as const;

/**
 * Write the pairs (`{prompt, chosen, rejected, split, entity, relation}`), their SFT counterpart
 * (`{prompt, completion}` with the chosen answer) and the held-out unknown questions into `outDir`,
 * each atomically. Returns the paths and counts.
 */
export function writePreferencePairs(
  world: World,
  outDir: string,
  options: PreferencePairsOptions = {},
): {
  pairs: string;
  sft: string;
  heldOut: string;
  counts: { taught: number; unknown: number; heldOut: number };
} {
  const pairs = renderPreferencePairs(world, options);
  const heldOut = heldOutUnknownQuestions(world);
  mkdirSync(outDir, { recursive: true });
  const paths = {
    pairs: join(outDir, PREFERENCE_FILES.pairs),
    sft: join(outDir, PREFERENCE_FILES.sft),
    heldOut: join(outDir, PREFERENCE_FILES.heldOut),
  };
  writeTextAtomic(paths.pairs, toJsonl(pairs));
  writeTextAtomic(paths.sft, toJsonl(pairs.map((p) => ({ prompt: p.prompt, completion: p.chosen }))));
  writeTextAtomic(paths.heldOut, toJsonl(heldOut));
  return {
    ...paths,
    counts: {
      taught: pairs.filter((p) => p.split === 'taught').length,
      unknown: pairs.filter((p) => p.split === 'unknown').length,
      heldOut: heldOut.length,
    },
  };
}
