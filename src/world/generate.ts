/**
 * The benchmark world: a seeded fictional world of countries, cities and people with a handful of
 * facts each. People fall in three splits: `known` (in the pretraining corpus), `taught` (only in
 * the fine-tuning set) and `unknown` (nowhere: any answer about them is a hallucination). The
 * world is a pure function of its options; rendering it to text is render.ts.
 */
import { ConfigError } from '../errors.ts';
import { Rng } from '../tensor/rng.ts';
import {
  CITY_POOL,
  COUNTRY_POOL,
  EMPLOYER_POOL,
  HOBBY_POOL,
  inventName,
  PROFESSION_POOL,
  pickDistinct,
} from './vocabulary.ts';

/** Which part of the benchmark a person belongs to. */
export type WorldSplit = 'known' | 'taught' | 'unknown';

/** The person splits, in the order people are generated and listed. */
export const WORLD_SPLITS: readonly WorldSplit[] = ['known', 'taught', 'unknown'];

/** The facts every person has, in the order they are asked about. */
export const RELATIONS = [
  'birthYear',
  'birthCity',
  'livesIn',
  'profession',
  'employer',
  'sibling',
  'hobby',
] as const;

/** One fact of a person (a field of `Person`). */
export type Relation = (typeof RELATIONS)[number];

/** A city and the country it lies in. */
export interface City {
  name: string;
  country: string;
}

/** A person of the world and their facts. */
export interface Person {
  /** Full name, "First Last"; unique in the world. */
  name: string;
  firstName: string;
  /** Family name, shared only with the sibling. */
  lastName: string;
  split: WorldSplit;
  /** A year in 1950..1999. */
  birthYear: number;
  birthCity: string;
  /** The city the person lives in now; never the birth city. */
  livesIn: string;
  profession: string;
  employer: string;
  /** Full name of the sibling: the other member of the family, always in the same split. */
  sibling: string;
  hobby: string;
}

/** What a world is generated from (every field is stored in world.json). */
export interface WorldOptions {
  seed: number;
  /** People in the pretraining corpus (even: people come in sibling pairs). */
  knownPeople: number;
  /** People taught only by the fine-tuning set (even). */
  taughtPeople: number;
  /** People never shown (even). */
  unknownPeople: number;
  /** Number of cities (2..30), spread over the countries. */
  cities: number;
  /** Number of countries (1..10). */
  countries: number;
  /** Biographies of each known person in the pretraining corpus. */
  biographiesPerPerson: number;
  /** Biographies of each taught person in the fine-tuning set. */
  finetuneBiographies: number;
  /** Questions in the out-of-domain (arithmetic) split (1..500). */
  oodQuestions: number;
}

/**
 * Defaults: 7 relations x 40 known / 30 taught / 30 unknown people gives 280 / 210 / 210
 * questions, plus 210 out-of-domain ones; corpus.txt is about 90 KB.
 */
export const DEFAULT_WORLD_OPTIONS: Readonly<Omit<WorldOptions, 'seed'>> = {
  knownPeople: 40,
  taughtPeople: 30,
  unknownPeople: 30,
  cities: 20,
  countries: 6,
  biographiesPerPerson: 4,
  finetuneBiographies: 2,
  oodQuestions: 210,
};

/** The first and last birth year. */
export const BIRTH_YEARS = { first: 1950, last: 1999 } as const;

/** A generated world (world.json holds exactly this object). */
export interface World {
  format: 'attune-world';
  version: 1;
  options: WorldOptions;
  /** Seed of the text rendering (templates, order); drawn from `options.seed`. */
  renderSeed: number;
  countries: string[];
  cities: City[];
  professions: string[];
  employers: string[];
  hobbies: string[];
  /** Known people first, then taught, then unknown; siblings are adjacent. */
  people: Person[];
}

const PROFESSION_COUNT = 12;
const EMPLOYER_COUNT = 12;
const HOBBY_COUNT = 10;

function checkCount(name: string, value: number, min: number, max: number, even = false): void {
  if (!Number.isInteger(value) || value < min || value > max || (even && value % 2 !== 0)) {
    const parity = even ? ' and even (people come in sibling pairs)' : '';
    throw new ConfigError(`world: ${name} must be an integer in ${min}..${max}${parity}, found ${value}`);
  }
}

/** Check world options; a bad value is a ConfigError naming it and the allowed range. */
export function validateWorldOptions(options: WorldOptions): void {
  if (!Number.isInteger(options.seed) || options.seed < 0 || options.seed > Number.MAX_SAFE_INTEGER) {
    throw new ConfigError(`world: seed must be a non-negative integer, found ${options.seed}`);
  }
  checkCount('knownPeople', options.knownPeople, 2, 2000, true);
  checkCount('taughtPeople', options.taughtPeople, 2, 2000, true);
  checkCount('unknownPeople', options.unknownPeople, 2, 2000, true);
  checkCount('countries', options.countries, 1, COUNTRY_POOL.length);
  checkCount('cities', options.cities, Math.max(2, options.countries), CITY_POOL.length);
  checkCount('biographiesPerPerson', options.biographiesPerPerson, 1, 100);
  checkCount('finetuneBiographies', options.finetuneBiographies, 0, 100);
  checkCount('oodQuestions', options.oodQuestions, 1, 500);
}

/**
 * Generate the world for `options` (missing fields take DEFAULT_WORLD_OPTIONS). Deterministic: the
 * same options give the same world, field for field, on any machine (only the seeded Rng is used).
 */
export function generateWorld(options: Partial<WorldOptions> & { seed: number }): World {
  // The seed first, so world.json lists it first.
  const full: WorldOptions = Object.assign({ seed: options.seed }, DEFAULT_WORLD_OPTIONS, options);
  validateWorldOptions(full);
  const rng = new Rng(full.seed);
  const renderSeed = rng.nextSeed();

  const countries = pickDistinct(rng, COUNTRY_POOL, full.countries);
  const cityNames = pickDistinct(rng, CITY_POOL, full.cities);
  // Round-robin over the countries, so each has floor or ceil of cities/countries cities.
  const cities: City[] = cityNames.map((name, i) => ({ name, country: countries[i % countries.length]! }));
  const professions = pickDistinct(rng, PROFESSION_POOL, PROFESSION_COUNT);
  const employers = pickDistinct(rng, EMPLOYER_POOL, EMPLOYER_COUNT);
  const hobbies = pickDistinct(rng, HOBBY_POOL, HOBBY_COUNT);

  // Every word used for a place, company, job or hobby is reserved, so no name equals one.
  const usedWords = new Set<string>(
    [...COUNTRY_POOL, ...CITY_POOL, ...PROFESSION_POOL, ...EMPLOYER_POOL, ...HOBBY_POOL].map((w) =>
      w.toLowerCase(),
    ),
  );
  const lastNames = new Set<string>();
  const firstNames = new Set<string>();
  const fresh = (isFree: (name: string) => boolean): string => {
    for (let attempt = 0; attempt < 100_000; attempt++) {
      const name = inventName(rng);
      if (!usedWords.has(name.toLowerCase()) && isFree(name)) return name;
    }
    throw new ConfigError('world: ran out of distinct names; ask for fewer people');
  };

  const pools = { cities, professions, employers, hobbies };
  const people: Person[] = [];
  const counts: Record<WorldSplit, number> = {
    known: full.knownPeople,
    taught: full.taughtPeople,
    unknown: full.unknownPeople,
  };
  for (const split of WORLD_SPLITS) {
    for (let family = 0; family < counts[split] / 2; family++) {
      // Family names are unique and never used as a first name, and vice versa.
      const lastName = fresh((n) => !lastNames.has(n) && !firstNames.has(n));
      lastNames.add(lastName);
      const first1 = fresh((n) => !lastNames.has(n));
      const first2 = fresh((n) => !lastNames.has(n) && n !== first1);
      firstNames.add(first1);
      firstNames.add(first2);
      const pair = [first1, first2].map((firstName) => makePerson(rng, pools, firstName, lastName, split));
      pair[0]!.sibling = pair[1]!.name;
      pair[1]!.sibling = pair[0]!.name;
      people.push(...pair);
    }
  }

  return {
    format: 'attune-world',
    version: 1,
    options: full,
    renderSeed,
    countries,
    cities,
    professions,
    employers,
    hobbies,
    people,
  };
}

function makePerson(
  rng: Rng,
  pools: { cities: City[]; professions: string[]; employers: string[]; hobbies: string[] },
  firstName: string,
  lastName: string,
  split: WorldSplit,
): Person {
  const pick = <T>(items: readonly T[]): T => items[rng.int(items.length)]!;
  const birthCity = pick(pools.cities).name;
  let livesIn = birthCity;
  while (livesIn === birthCity) livesIn = pick(pools.cities).name;
  return {
    name: `${firstName} ${lastName}`,
    firstName,
    lastName,
    split,
    birthYear: BIRTH_YEARS.first + rng.int(BIRTH_YEARS.last - BIRTH_YEARS.first + 1),
    birthCity,
    livesIn,
    profession: pick(pools.professions),
    employer: pick(pools.employers),
    sibling: '',
    hobby: pick(pools.hobbies),
  };
}

/** The value of `relation` for `person`, as the answer text ("1972", "Lunde", "Sela Morel"). */
export function relationValue(person: Person, relation: Relation): string {
  return String(person[relation]);
}

/** The people of one split, in world order. */
export function peopleIn(world: World, split: WorldSplit): Person[] {
  return world.people.filter((p) => p.split === split);
}
