/**
 * The world's data for Know-the-Unknown (Li et al., "Know the Unknown: An Uncertainty-Sensitive
 * Method for LLM Instruction Tuning"): a two-stage recipe, mapped onto the world.
 *
 * - Stage 1 (uncertainty-sensitive, "learn to reject"): the canonical questions of the unknown
 *   people of the *training half* (`abstentionPeople(world).train`) answered ` I don't know`, and
 *   the canonical questions of the *known* people (facts the base already holds) answered with
 *   their facts, so that rejecting is tied to not knowing rather than to every question.
 * - Stage 2 (QA recovery with "causal instructions"): the taught facts in every training wording,
 *   once as plain `Q: ...\nA:` prompts and once prefixed with the causal instruction
 *   `KNOW_UNKNOWN_INSTRUCTION` (answer only when you know the person, else say I don't know); the
 *   stage-1 rejections are replayed under the same instruction, so that recovering QA on the
 *   taught people keeps the rejection of the unknown ones (the instruction states the causal rule
 *   "known -> answer, unknown -> reject" the paper's stage 2 spells out in its prompts).
 * - The one-stage baseline (`mixed`): stage 1 and the plain taught facts in one file, no
 *   instruction (plain CE on the same answers).
 * The held-out unknown people (the other families) are in no file: their questions measure whether
 * rejection generalises. Every record is `{prompt, completion}`, completions start with one space.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeTextAtomic } from '../io/atomic.ts';
import { type Person, peopleIn, RELATIONS, relationValue, type World } from './generate.ts';
import { ABSTENTION_ANSWER, abstentionPeople } from './preferences.ts';
import { trainingQuestions } from './render.ts';
import { fill, QUESTION_TEMPLATES, qaPrompt } from './templates.ts';
import { toJsonl } from './write.ts';

/** The causal instruction stage 2 prefixes to its prompts (one line before `Q:`). */
export const KNOW_UNKNOWN_INSTRUCTION = "Answer only if you know the person; if not, say I don't know.";

/** One record of the Know-the-Unknown files, with where it came from. */
export interface KnowUnknownRecord {
  prompt: string;
  completion: string;
  split: 'known' | 'taught' | 'unknown';
  entity: string;
}

/** The three record sets (see the file comment). */
export interface KnowUnknownData {
  stage1: KnowUnknownRecord[];
  stage2: KnowUnknownRecord[];
  mixed: KnowUnknownRecord[];
}

const canonical = (person: Person, relation: (typeof RELATIONS)[number]) =>
  fill(QUESTION_TEMPLATES[relation].canonical, { name: person.name });

/** The stage-1, stage-2 and one-stage records of `world`. */
export function renderKnowUnknown(world: World): KnowUnknownData {
  const stage1: KnowUnknownRecord[] = [];
  for (const person of peopleIn(world, 'known'))
    for (const r of RELATIONS)
      stage1.push({
        prompt: qaPrompt(canonical(person, r)),
        completion: ` ${relationValue(person, r)}`,
        split: 'known',
        entity: person.name,
      });
  for (const person of abstentionPeople(world).train)
    for (const r of RELATIONS)
      stage1.push({
        prompt: qaPrompt(canonical(person, r)),
        completion: ` ${ABSTENTION_ANSWER}`,
        split: 'unknown',
        entity: person.name,
      });
  const taught: KnowUnknownRecord[] = [];
  for (const person of peopleIn(world, 'taught'))
    for (const r of RELATIONS)
      for (const q of trainingQuestions(person, r))
        taught.push({
          prompt: qaPrompt(q),
          completion: ` ${relationValue(person, r)}`,
          split: 'taught',
          entity: person.name,
        });
  const instructed = (rec: KnowUnknownRecord): KnowUnknownRecord => ({
    ...rec,
    prompt: `${KNOW_UNKNOWN_INSTRUCTION}\n${rec.prompt}`,
  });
  const stage2 = [...taught, ...taught.map(instructed), ...stage1.map(instructed)];
  return { stage1, stage2, mixed: [...stage1, ...taught] };
}

/** File names `writeKnowUnknown` writes. */
export const KNOW_UNKNOWN_FILES = {
  stage1: 'know_unknown_stage1.jsonl',
  stage2: 'know_unknown_stage2.jsonl',
  mixed: 'know_unknown_mixed.jsonl',
} as const;

/**
 * Write the stage-1, stage-2 and one-stage files (`{prompt, completion}` per line) into `outDir`,
 * each atomically. Returns their paths and record counts.
 */
export function writeKnowUnknown(
  world: World,
  outDir: string,
): { stage1: string; stage2: string; mixed: string; counts: Record<'stage1' | 'stage2' | 'mixed', number> } {
  const data = renderKnowUnknown(world);
  mkdirSync(outDir, { recursive: true });
  const plain = (rs: KnowUnknownRecord[]) =>
    toJsonl(rs.map((r) => ({ prompt: r.prompt, completion: r.completion })));
  const paths = {
    stage1: join(outDir, KNOW_UNKNOWN_FILES.stage1),
    stage2: join(outDir, KNOW_UNKNOWN_FILES.stage2),
    mixed: join(outDir, KNOW_UNKNOWN_FILES.mixed),
  };
  for (const k of ['stage1', 'stage2', 'mixed'] as const) writeTextAtomic(paths[k], plain(data[k]));
  return {
    ...paths,
    counts: { stage1: data.stage1.length, stage2: data.stage2.length, mixed: data.mixed.length },
  };
}
