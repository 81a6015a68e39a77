/**
 * A noisy fine-tuning set for data curation: the taught facts as `{prompt, completion}` pairs where a
 * seeded fraction of answers is wrong (another city, year, employer... of the world, never the true
 * one) and a seeded fraction of records is malformed (empty prompt, missing or non-string
 * completion, a truncated JSON line). The ground truth of every line is kept beside it, so curation
 * (CLEAR) can be scored: which records were corrupted, what the true answer was.
 */
import { ConfigError } from '../errors.ts';
import { Rng } from '../tensor/rng.ts';
import {
  BIRTH_YEARS,
  type Person,
  peopleIn,
  RELATIONS,
  type Relation,
  relationValue,
  type World,
} from './generate.ts';
import { trainingQuestions } from './render.ts';
import { qaPrompt } from './templates.ts';

/** A question/answer record that knows which fact it states. */
export interface TaggedQaRecord {
  prompt: string;
  /** ` value` (one leading space, as the world's fine-tuning set writes it). */
  completion: string;
  /** The person's full name. */
  entity: string;
  relation: Relation;
}

/** How a line of the noisy set differs from the clean one. */
export type CorruptionStatus = 'clean' | 'corrupted' | 'malformed';

/** The ways a malformed record is broken, drawn in turn. */
export const MALFORMED_KINDS = [
  'empty_prompt',
  'missing_completion',
  'completion_not_string',
  'truncated_json',
] as const;

/** One way a record is malformed. */
export type MalformedKind = (typeof MALFORMED_KINDS)[number];

/** The ground truth of one line of the noisy set. */
export interface CorruptionTruth {
  /** 1-based line number in the noisy JSONL file. */
  line: number;
  status: CorruptionStatus;
  entity: string;
  relation: Relation;
  /** The world's answer (trimmed). */
  answer: string;
  /** The answer the line gives instead (corrupted lines only). */
  given?: string;
  /** How the line is broken (malformed lines only). */
  defect?: MalformedKind;
}

/** What a noisy set is made from. */
export interface CorruptionOptions {
  /** Seed of which records are corrupted and of the wrong values. */
  seed: number;
  /** Fraction of records whose answer is replaced by a wrong one (0..1). */
  corruptFraction: number;
  /** Fraction of records made malformed (0..1; corrupt + malformed <= 1). */
  malformedFraction?: number;
}

/** A noisy set: the JSONL lines (no newlines) and the truth of each, line for line. */
export interface CorruptedSet {
  lines: string[];
  truth: CorruptionTruth[];
}

/** Which taught wordings to render: the canonical question only (the bench's file) or every training wording. */
export type QaWordings = 'canonical' | 'training';

/**
 * The taught facts as tagged QA records, per taught person (world order) and relation (RELATIONS
 * order): the canonical question only, or every training wording (canonical first).
 */
export function renderTaughtQa(world: World, wordings: QaWordings = 'canonical'): TaggedQaRecord[] {
  const records: TaggedQaRecord[] = [];
  for (const person of peopleIn(world, 'taught')) {
    for (const relation of RELATIONS) {
      const questions = trainingQuestions(person, relation);
      for (const question of wordings === 'canonical' ? questions.slice(0, 1) : questions) {
        records.push({
          prompt: qaPrompt(question),
          completion: ` ${relationValue(person, relation)}`,
          entity: person.name,
          relation,
        });
      }
    }
  }
  return records;
}

/** The values a `relation` can take in `world` (the candidates of a wrong answer). */
export function relationCandidates(world: World, relation: Relation): string[] {
  switch (relation) {
    case 'birthYear': {
      const years: string[] = [];
      for (let y = BIRTH_YEARS.first; y <= BIRTH_YEARS.last; y++) years.push(String(y));
      return years;
    }
    case 'birthCity':
    case 'livesIn':
      return world.cities.map((c) => c.name);
    case 'profession':
      return [...world.professions];
    case 'employer':
      return [...world.employers];
    case 'hobby':
      return [...world.hobbies];
    case 'sibling':
      return world.people.map((p) => p.name);
  }
}

/**
 * A wrong value of `relation` for `person`, drawn by `rng` from the world's candidates: never the
 * true value (and, for a sibling, never the person themself).
 */
export function wrongValue(world: World, person: Person, relation: Relation, rng: Rng): string {
  const truth = relationValue(person, relation);
  const candidates = relationCandidates(world, relation).filter((v) => v !== truth && v !== person.name);
  if (candidates.length === 0)
    throw new ConfigError(`world: no wrong value exists for ${relation} (the world has one candidate)`);
  return candidates[rng.int(candidates.length)]!;
}

function checkFraction(name: string, value: number): void {
  if (!Number.isFinite(value) || value < 0 || value > 1)
    throw new ConfigError(`corrupted set: ${name} must be a number in 0..1, found ${value}`);
}

/** Check corruption options; a bad value is a ConfigError naming it. */
export function validateCorruptionOptions(options: CorruptionOptions): void {
  if (!Number.isInteger(options.seed) || options.seed < 0)
    throw new ConfigError(`corrupted set: seed must be a non-negative integer, found ${options.seed}`);
  checkFraction('corruptFraction', options.corruptFraction);
  const malformed = options.malformedFraction ?? 0;
  checkFraction('malformedFraction', malformed);
  if (options.corruptFraction + malformed > 1)
    throw new ConfigError(
      `corrupted set: corruptFraction + malformedFraction must be <= 1, found ${options.corruptFraction} + ${malformed}`,
    );
}

/** The JSONL line of a malformed version of `record`. */
function malformedLine(record: TaggedQaRecord, kind: MalformedKind): string {
  switch (kind) {
    case 'empty_prompt':
      return JSON.stringify({ prompt: '', completion: record.completion });
    case 'missing_completion':
      return JSON.stringify({ prompt: record.prompt });
    case 'completion_not_string':
      return JSON.stringify({ prompt: record.prompt, completion: Number(record.completion) || null });
    case 'truncated_json': {
      const whole = JSON.stringify({ prompt: record.prompt, completion: record.completion });
      return whole.slice(0, Math.max(1, Math.floor(whole.length / 2)));
    }
  }
}

/**
 * Corrupt `records` (tagged QA of `world`): exactly round(corruptFraction * n) records, chosen by a
 * seeded shuffle, get a wrong answer; round(malformedFraction * n) others become malformed lines
 * (the kinds in turn). The order of the records is kept, so line i of the result is record i.
 */
export function corruptQaRecords(
  world: World,
  records: readonly TaggedQaRecord[],
  options: CorruptionOptions,
): CorruptedSet {
  validateCorruptionOptions(options);
  const byName = new Map(world.people.map((p) => [p.name, p]));
  const rng = new Rng(options.seed);
  const order = rng.shuffle(records.map((_, i) => i));
  const corruptCount = Math.round(options.corruptFraction * records.length);
  const malformedCount = Math.min(
    records.length - corruptCount,
    Math.round((options.malformedFraction ?? 0) * records.length),
  );
  const status = new Array<CorruptionStatus>(records.length).fill('clean');
  for (const i of order.slice(0, corruptCount)) status[i] = 'corrupted';
  const malformedAt = new Map<number, MalformedKind>();
  order.slice(corruptCount, corruptCount + malformedCount).forEach((i, n) => {
    status[i] = 'malformed';
    malformedAt.set(i, MALFORMED_KINDS[n % MALFORMED_KINDS.length]!);
  });
  const lines: string[] = [];
  const truth: CorruptionTruth[] = [];
  records.forEach((record, i) => {
    const person = byName.get(record.entity);
    if (!person)
      throw new ConfigError(
        `corrupted set: record ${i + 1} names '${record.entity}', who is not in the world`,
      );
    const answer = relationValue(person, record.relation);
    const base = { line: i + 1, entity: record.entity, relation: record.relation, answer };
    if (status[i] === 'corrupted') {
      const given = wrongValue(world, person, record.relation, rng);
      lines.push(JSON.stringify({ prompt: record.prompt, completion: ` ${given}` }));
      truth.push({ ...base, status: 'corrupted', given });
    } else if (status[i] === 'malformed') {
      const defect = malformedAt.get(i)!;
      lines.push(malformedLine(record, defect));
      truth.push({ ...base, status: 'malformed', defect });
    } else {
      lines.push(JSON.stringify({ prompt: record.prompt, completion: record.completion }));
      truth.push({ ...base, status: 'clean' });
    }
  });
  return { lines, truth };
}

/** The taught facts of `world` in `wordings`, corrupted as `options` say. */
export function renderCorruptedFinetuneSet(
  world: World,
  options: CorruptionOptions,
  wordings: QaWordings = 'canonical',
): CorruptedSet {
  return corruptQaRecords(world, renderTaughtQa(world, wordings), options);
}
