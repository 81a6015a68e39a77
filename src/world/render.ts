/**
 * Render a world as text: biographies, the pretraining corpus (known people and geography), the
 * fine-tuning set (taught people) and the evaluation splits (known, taught, unknown, out-of-domain
 * and a mixed file). Every random choice comes from Rngs seeded by `world.renderSeed`, one stream
 * per artifact, so the output is a pure function of the world.
 */
import { Rng } from '../tensor/rng.ts';
import {
  type Person,
  peopleIn,
  RELATIONS,
  type Relation,
  relationValue,
  type World,
  type WorldSplit,
} from './generate.ts';
import {
  BIOGRAPHY_TEMPLATES,
  CITY_QUESTION,
  CITY_TEMPLATES,
  fill,
  OOD_TEMPLATES,
  QUESTION_TEMPLATES,
  qaPrompt,
  qaText,
} from './templates.ts';

/** A `{text}` training record (every token trained). */
export interface TextRecord {
  text: string;
}

/** A `{prompt, completion}` training record (the completion is trained). */
export interface PromptCompletionRecord {
  prompt: string;
  completion: string;
}

/** A fine-tuning record: a QA pair or a biography. */
export type FinetuneRecord = PromptCompletionRecord | TextRecord;

/** The evaluation splits: the three person splits and the out-of-domain arithmetic family. */
export type EvalSplit = WorldSplit | 'ood';

/** One evaluation question (a line of an eval_*.jsonl file). */
export interface EvalRecord {
  /** `Q: <canonical question>\nA:`; the model's answer follows after one space. */
  prompt: string;
  /** The expected answer, trimmed ("Lunde", "1972", "12"). For `unknown` it is the world's fact, which nothing taught. */
  answer: string;
  split: EvalSplit;
  /** The person's full name, or the arithmetic expression ("7 plus 5") for `ood`. */
  entity: string;
  /** A Relation, or `plus` / `minus` for `ood`. */
  relation: Relation | 'plus' | 'minus';
  /** The same question in a held-out wording that no training file contains (same format as `prompt`). */
  paraphrase: string;
  /** False for `unknown`: any answer is a hallucination and grades as wrong. */
  answerable: boolean;
}

/** Everything a world renders to. */
export interface RenderedWorld {
  /** Pretraining documents in file order (biographies, QA pairs, geography), each without blank lines. */
  pretrain: string[];
  finetune: FinetuneRecord[];
  eval: Record<EvalSplit | 'mixed', EvalRecord[]>;
}

/** Child seeds of the render streams, drawn in this fixed order from `world.renderSeed`. */
function renderSeeds(world: World): { pretrain: number; finetune: number; ood: number } {
  const rng = new Rng(world.renderSeed);
  return { pretrain: rng.nextSeed(), finetune: rng.nextSeed(), ood: rng.nextSeed() };
}

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[rng.int(items.length)]!;
}

/**
 * One biography of `person`: a paragraph with one sentence per fact, each in a template drawn by
 * `rng`, in an order drawn by `rng`. Uses the full name in every sentence (no pronouns).
 */
export function renderBiography(person: Person, rng: Rng): string {
  const sentences = RELATIONS.map((relation) =>
    fill(pick(rng, BIOGRAPHY_TEMPLATES[relation]), {
      name: person.name,
      value: relationValue(person, relation),
    }),
  );
  return rng.shuffle(sentences).join(' ');
}

/** The training questions about one fact: the canonical wording, then each training paraphrase. */
export function trainingQuestions(person: Person, relation: Relation): string[] {
  const templates = QUESTION_TEMPLATES[relation];
  return [templates.canonical, ...templates.train].map((t) => fill(t, { name: person.name }));
}

/**
 * The pretraining documents, shuffled: `biographiesPerPerson` biographies of every known person,
 * a QA document (`Q: ...\nA: value`) per known fact and training wording, and geography (two
 * sentences and one QA document per city, one sentence per country listing its cities).
 */
export function renderPretrainDocuments(world: World): string[] {
  const rng = new Rng(renderSeeds(world).pretrain);
  const docs: string[] = [];
  for (const person of peopleIn(world, 'known')) {
    for (let i = 0; i < world.options.biographiesPerPerson; i++) docs.push(renderBiography(person, rng));
    for (const relation of RELATIONS) {
      const answer = relationValue(person, relation);
      for (const question of trainingQuestions(person, relation)) docs.push(qaText(question, answer));
    }
  }
  for (const city of world.cities) {
    const values = { city: city.name, country: city.country };
    const [first, second] = rng.shuffle([...CITY_TEMPLATES]);
    docs.push(fill(first!, values), fill(second!, values), qaText(fill(CITY_QUESTION, values), city.country));
  }
  for (const country of world.countries) {
    const names = world.cities.filter((c) => c.country === country).map((c) => c.name);
    const list = names.length === 1 ? names[0]! : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
    docs.push(`The cities of ${country} are ${list}.`);
  }
  return rng.shuffle(docs);
}

/**
 * The fine-tuning records, shuffled: for every taught person and fact a `{prompt, completion}`
 * pair per training wording (prompt `Q: ...\nA:`, completion ` value`), and
 * `finetuneBiographies` `{text}` biographies per taught person.
 */
export function renderFinetuneRecords(world: World): FinetuneRecord[] {
  const rng = new Rng(renderSeeds(world).finetune);
  const records: FinetuneRecord[] = [];
  for (const person of peopleIn(world, 'taught')) {
    for (const relation of RELATIONS) {
      const completion = ` ${relationValue(person, relation)}`;
      for (const question of trainingQuestions(person, relation)) {
        records.push({ prompt: qaPrompt(question), completion });
      }
    }
    for (let i = 0; i < world.options.finetuneBiographies; i++) {
      records.push({ text: renderBiography(person, rng) });
    }
  }
  return rng.shuffle(records);
}

/** The evaluation questions about one person split: every person (world order) x every relation (RELATIONS order). */
export function renderEvalSplit(world: World, split: WorldSplit): EvalRecord[] {
  const records: EvalRecord[] = [];
  for (const person of peopleIn(world, split)) {
    for (const relation of RELATIONS) {
      const templates = QUESTION_TEMPLATES[relation];
      records.push({
        prompt: qaPrompt(fill(templates.canonical, { name: person.name })),
        answer: relationValue(person, relation),
        split,
        entity: person.name,
        relation,
        paraphrase: qaPrompt(fill(templates.heldOut, { name: person.name })),
        answerable: split !== 'unknown',
      });
    }
  }
  return records;
}

/**
 * The out-of-domain split: `oodQuestions` distinct arithmetic questions ("What is 7 plus 5?",
 * operands 1..20, differences positive), a kind of question the world never asks or answers.
 */
export function renderOodQuestions(world: World): EvalRecord[] {
  const rng = new Rng(renderSeeds(world).ood);
  const seen = new Set<string>();
  const records: EvalRecord[] = [];
  while (records.length < world.options.oodQuestions) {
    const op: 'plus' | 'minus' = rng.uniform() < 0.5 ? 'plus' : 'minus';
    let a = 1 + rng.int(20);
    let b = 1 + rng.int(20);
    if (op === 'minus') {
      if (a === b) continue;
      if (a < b) [a, b] = [b, a];
    }
    const entity = `${a} ${op} ${b}`;
    if (seen.has(entity)) continue;
    seen.add(entity);
    records.push({
      prompt: qaPrompt(fill(OOD_TEMPLATES[op].canonical, { a, b })),
      answer: String(op === 'plus' ? a + b : a - b),
      split: 'ood',
      entity,
      relation: op,
      paraphrase: qaPrompt(fill(OOD_TEMPLATES[op].heldOut, { a, b })),
      answerable: true,
    });
  }
  return records;
}

/**
 * Interleave evaluation splits round-robin (first of each, then second of each, ...; a split that
 * runs out is skipped), so every prefix of the result is balanced. eval_mixed.jsonl is
 * `mixEvalSplits([known, taught, unknown])`.
 */
export function mixEvalSplits(splits: readonly (readonly EvalRecord[])[]): EvalRecord[] {
  const mixed: EvalRecord[] = [];
  const longest = Math.max(0, ...splits.map((s) => s.length));
  for (let i = 0; i < longest; i++) {
    for (const split of splits) if (i < split.length) mixed.push(split[i]!);
  }
  return mixed;
}

/** Render every artifact of `world` (what writeWorld writes). */
export function renderWorld(world: World): RenderedWorld {
  const known = renderEvalSplit(world, 'known');
  const taught = renderEvalSplit(world, 'taught');
  const unknown = renderEvalSplit(world, 'unknown');
  return {
    pretrain: renderPretrainDocuments(world),
    finetune: renderFinetuneRecords(world),
    eval: {
      known,
      taught,
      unknown,
      ood: renderOodQuestions(world),
      mixed: mixEvalSplits([known, taught, unknown]),
    },
  };
}
