/**
 * The closed vocabularies of the benchmark world (countries, cities, professions, employers,
 * hobbies) and the syllable generator for person names. Everything is plain ASCII and short, so a
 * tiny byte-level model can learn it; the pools are fixed and a seed picks from them.
 */
import type { Rng } from '../tensor/rng.ts';

/** Invented country names; a world uses a seeded subset. */
export const COUNTRY_POOL: readonly string[] = [
  'Varnia',
  'Oskeland',
  'Tamberia',
  'Quorra',
  'Dorvia',
  'Ilsany',
  'Morvath',
  'Kelland',
  'Zandria',
  'Pentara',
];

/** Invented city names; a world uses a seeded subset. */
export const CITY_POOL: readonly string[] = [
  'Lunde',
  'Aldor',
  'Brenn',
  'Corvale',
  'Dunmere',
  'Elsby',
  'Farrow',
  'Galtor',
  'Hollin',
  'Ivrel',
  'Kestow',
  'Lorne',
  'Marbeck',
  'Norhal',
  'Ostrel',
  'Pellan',
  'Rookby',
  'Sarnet',
  'Tolvern',
  'Ulmer',
  'Varrin',
  'Wexley',
  'Yarrow',
  'Zennor',
  'Ashby',
  'Cobbet',
  'Drumlin',
  'Harwick',
  'Merrow',
  'Selby',
];

/** Professions (all start with a consonant, so "a {profession}" is always right). */
export const PROFESSION_POOL: readonly string[] = [
  'baker',
  'painter',
  'doctor',
  'teacher',
  'farmer',
  'pilot',
  'lawyer',
  'nurse',
  'writer',
  'singer',
  'chemist',
  'builder',
  'tailor',
  'sailor',
];

/** Employers: compound English words, visibly unlike the syllable-made person names. */
export const EMPLOYER_POOL: readonly string[] = [
  'Bluegate',
  'Ironleaf',
  'Sunmark',
  'Coldwater',
  'Redfern',
  'Stonebridge',
  'Greenhill',
  'Silverline',
  'Oakfield',
  'Westbrook',
  'Highmoor',
  'Brightwater',
  'Northwind',
  'Goldcrest',
];

/** Hobbies (gerunds or games, used as "{name} enjoys {hobby}"). */
export const HOBBY_POOL: readonly string[] = [
  'chess',
  'rowing',
  'fishing',
  'knitting',
  'climbing',
  'cycling',
  'gardening',
  'archery',
  'sailing',
  'pottery',
];

const ONSETS = ['b', 'd', 'f', 'g', 'k', 'l', 'm', 'n', 'p', 'r', 's', 't', 'v', 'z'];
const VOWELS = ['a', 'e', 'i', 'o', 'u'];
const CODAS = ['n', 'r', 'l', 's', 'k'];

/** One syllable: consonant + vowel + (40% of the time) a final consonant. */
function syllable(rng: Rng): string {
  const onset = ONSETS[rng.int(ONSETS.length)]!;
  const vowel = VOWELS[rng.int(VOWELS.length)]!;
  const coda = rng.uniform() < 0.4 ? CODAS[rng.int(CODAS.length)]! : '';
  return onset + vowel + coda;
}

/**
 * An invented two-syllable name, capitalised ("Tavik", "Morel"): 4 to 6 ASCII letters starting
 * with a consonant (never "Q", so a name cannot look like the "Q:" of a question line).
 */
export function inventName(rng: Rng): string {
  const word = syllable(rng) + syllable(rng);
  return word[0]!.toUpperCase() + word.slice(1);
}

/** Pick `count` distinct items of `pool` in a seeded order (a shuffled copy's prefix). */
export function pickDistinct<T>(rng: Rng, pool: readonly T[], count: number): T[] {
  if (count > pool.length) {
    throw new RangeError(`pickDistinct: asked for ${count} items from a pool of ${pool.length}`);
  }
  return rng.shuffle([...pool]).slice(0, count);
}
