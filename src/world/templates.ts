/**
 * Text templates of the benchmark world: several biography sentences per fact, and per relation
 * one canonical question (asked in evaluation and trained on), training paraphrases (trained on,
 * never asked in evaluation) and one held-out paraphrase (never trained on: the `paraphrase` field
 * of evaluation records). `{name}` is a person's full name, `{value}` the fact.
 */
import type { Relation } from './generate.ts';

/** The question wordings of one relation. */
export interface QuestionTemplates {
  /** The wording of evaluation prompts; also in the training data. */
  canonical: string;
  /** Other wordings in the training data (pretraining QA lines and the fine-tuning set). */
  train: readonly string[];
  /** A wording in no training data: for measuring generalisation across phrasings. */
  heldOut: string;
}

/** Question wordings per relation. */
export const QUESTION_TEMPLATES: Readonly<Record<Relation, QuestionTemplates>> = {
  birthYear: {
    canonical: 'In what year was {name} born?',
    train: ['When was {name} born?', 'What is the birth year of {name}?'],
    heldOut: 'Which year was {name} born in?',
  },
  birthCity: {
    canonical: 'Where was {name} born?',
    train: ['In which city was {name} born?', 'What is the birthplace of {name}?'],
    heldOut: 'Which city was {name} born in?',
  },
  livesIn: {
    canonical: 'Where does {name} live?',
    train: ['In which city does {name} live?', 'What city is home to {name}?'],
    heldOut: 'Which city does {name} live in?',
  },
  profession: {
    canonical: 'What is the job of {name}?',
    train: ['What does {name} do for a living?', 'What is the profession of {name}?'],
    heldOut: 'What work does {name} do?',
  },
  employer: {
    canonical: 'Who employs {name}?',
    train: ['Which company does {name} work for?', 'What is the employer of {name}?'],
    heldOut: 'For which company does {name} work?',
  },
  sibling: {
    canonical: 'Who is the sibling of {name}?',
    train: ['Who is the brother or sister of {name}?', 'Name the sibling of {name}.'],
    heldOut: 'Which person is a sibling of {name}?',
  },
  hobby: {
    canonical: 'What is the hobby of {name}?',
    train: ['What does {name} do for fun?', 'What pastime does {name} enjoy?'],
    heldOut: 'What does {name} like to do in free time?',
  },
};

/** Biography sentences per relation; one is drawn per fact and biography. */
export const BIOGRAPHY_TEMPLATES: Readonly<Record<Relation, readonly string[]>> = {
  birthYear: [
    '{name} was born in {value}.',
    '{name} came into the world in {value}.',
    'The year {value} saw the birth of {name}.',
    '{name} was born in the year {value}.',
  ],
  birthCity: [
    '{name} was born in the city of {value}.',
    '{name} is a native of {value}.',
    'The birthplace of {name} is {value}.',
    '{name} first saw the light of day in {value}.',
  ],
  livesIn: [
    '{name} lives in {value}.',
    '{name} now resides in {value}.',
    '{name} has a home in {value}.',
    'These days {name} lives in {value}.',
  ],
  profession: [
    '{name} works as a {value}.',
    '{name} is a {value} by trade.',
    'By profession, {name} is a {value}.',
    '{name} earns a living as a {value}.',
  ],
  employer: [
    '{name} is employed by {value}.',
    '{name} works for {value}.',
    '{value} employs {name}.',
    '{name} has a job at {value}.',
  ],
  sibling: [
    '{name} has a sibling named {value}.',
    '{name} and {value} are siblings.',
    'The sibling of {name} is {value}.',
    '{name} grew up with a sibling, {value}.',
  ],
  hobby: [
    '{name} enjoys {value}.',
    'In free time, {name} likes {value}.',
    'The hobby of {name} is {value}.',
    '{name} spends weekends on {value}.',
  ],
};

/** Sentences about a city (`{city}`, `{country}`). */
export const CITY_TEMPLATES: readonly string[] = [
  '{city} is a city in {country}.',
  '{city} lies in {country}.',
  'The city of {city} is in {country}.',
];

/** The canonical question about a city's country (a QA line in the pretraining corpus). */
export const CITY_QUESTION = 'In which country is {city}?';

/** Out-of-domain questions: arithmetic, which the world never mentions. */
export const OOD_TEMPLATES = {
  plus: { canonical: 'What is {a} plus {b}?', heldOut: 'How much is {a} plus {b}?' },
  minus: { canonical: 'What is {a} minus {b}?', heldOut: 'How much is {a} minus {b}?' },
} as const;

/** Fill `{key}` placeholders of `template` from `values`. */
export function fill(template: string, values: Readonly<Record<string, string | number>>): string {
  return template.replace(/\{(\w+)\}/g, (_whole, key: string) => {
    const value = values[key];
    if (value === undefined) throw new Error(`internal: template '${template}' has no value for {${key}}`);
    return String(value);
  });
}

/** The prompt a question is asked with: `Q: <question>\nA:` (the answer follows after one space). */
export function qaPrompt(question: string): string {
  return `Q: ${question}\nA:`;
}

/** A whole QA document: the prompt, one space, the answer. */
export function qaText(question: string, answer: string): string {
  return `${qaPrompt(question)} ${answer}`;
}
