/**
 * An unlabeled question pool with the world as the labelling oracle (for active learning): the
 * pool lists questions about the taught people in every training wording, without answers; the
 * oracle answers one question per call and counts its calls (a label's cost), so a learner's label
 * budget can be checked. `LabelOracle` (src/uq/active/oracle.ts) is the interface other oracles (a JSONL of labels) implement.
 */
import { ConfigError } from '../errors.ts';
import { Rng } from '../tensor/rng.ts';
import type { LabelOracle } from '../uq/active/oracle.ts';
import {
  peopleIn,
  RELATIONS,
  type Relation,
  relationValue,
  type World,
  type WorldSplit,
} from './generate.ts';
import { trainingQuestions } from './render.ts';
import { qaPrompt } from './templates.ts';

/** One unlabeled question of the pool. */
export interface PoolQuestion {
  /** Unique in the pool: `<entity>|<relation>|<wording index>`. */
  id: string;
  /** `Q: ...\nA:`, the prompt a model continues. */
  prompt: string;
  entity: string;
  relation: Relation;
}

export { type LabelOracle, LabelsOracle } from '../uq/active/oracle.ts';

/** What a question pool is drawn from. */
export interface QuestionPoolOptions {
  /** Seed of the pool's order. */
  seed: number;
  /** Person splits asked about (default taught). */
  splits?: readonly WorldSplit[];
}

/**
 * The unlabeled pool: every (person of `splits`, relation, training wording) question, in a seeded
 * order. With the default world that is 30 taught people x 7 relations x 3 wordings = 630 questions.
 */
export function renderQuestionPool(world: World, options: QuestionPoolOptions): PoolQuestion[] {
  const splits = options.splits ?? ['taught'];
  const questions: PoolQuestion[] = [];
  for (const split of splits) {
    for (const person of peopleIn(world, split)) {
      for (const relation of RELATIONS) {
        trainingQuestions(person, relation).forEach((question, wording) => {
          questions.push({
            id: `${person.name}|${relation}|${wording}`,
            prompt: qaPrompt(question),
            entity: person.name,
            relation,
          });
        });
      }
    }
  }
  return new Rng(options.seed).shuffle(questions);
}

/** The world as a labelling oracle: answers a pool question by its id and counts the calls. */
export class WorldOracle implements LabelOracle {
  private readonly people: Map<string, World['people'][number]>;
  private count = 0;

  constructor(world: World) {
    this.people = new Map(world.people.map((p) => [p.name, p]));
  }

  /** Labels given so far. */
  get calls(): number {
    return this.count;
  }

  /** The world's answer to `question`; an id the world cannot answer is a ConfigError and costs nothing. */
  label(question: Pick<PoolQuestion, 'id'>): string {
    const [entity, relation] = question.id.split('|');
    const person = entity === undefined ? undefined : this.people.get(entity);
    if (!person || !(RELATIONS as readonly string[]).includes(relation ?? ''))
      throw new ConfigError(`oracle: question id '${question.id}' names no person and relation of the world`);
    this.count++;
    return relationValue(person, relation as Relation);
  }
}
