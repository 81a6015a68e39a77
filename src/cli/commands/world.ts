/** `attune world`: generate the seeded benchmark world and write its corpus and question splits. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, UsageError } from '../../errors.ts';
import { DEFAULT_WORLD_OPTIONS, generateWorld, WORLD_FILES, writeWorld } from '../../world/index.ts';
import { jsonOption } from '../args.ts';
import { defineCommand } from '../command.ts';
import { formatTable } from '../table.ts';

const d = DEFAULT_WORLD_OPTIONS;

/** A people count: even (people come in sibling pairs); the range is the option spec's. */
function checkPeople(name: string, count: number): number {
  if (count % 2 !== 0) {
    throw new UsageError(
      `--${name}: expected an even integer (people come in sibling pairs), got "${count}"`,
    );
  }
  return count;
}

const options = {
  seed: { type: 'integer', min: 0, default: 0, description: 'seed of the world' },
  out: {
    type: 'path',
    required: true,
    description: 'folder to write the files into (created if missing)',
    valueName: '<dir>',
  },
  known: {
    type: 'integer',
    min: 2,
    default: d.knownPeople,
    description: 'people in the pretraining corpus (even)',
    valueName: '<n>',
  },
  taught: {
    type: 'integer',
    min: 2,
    default: d.taughtPeople,
    description: 'people taught only by the fine-tuning set (even)',
    valueName: '<n>',
  },
  unknown: {
    type: 'integer',
    min: 2,
    default: d.unknownPeople,
    description: 'people never shown (even)',
    valueName: '<n>',
  },
  overwrite: { type: 'boolean', description: 'replace world files already in --out' },
  json: jsonOption,
} as const;

/** `attune world --seed S --out DIR [--known N] [--taught N] [--unknown N] [--json]`. */
export const worldCommand = defineCommand({
  name: 'world',
  summary: 'Generate the seeded benchmark world: pretraining corpus, fine-tuning set, question splits',
  description: `Generates a fictional world of cities, countries and people (birth year, birth city, home
city, profession, employer, sibling, hobby) from the seed and writes, into --out: corpus.txt
(documents separated by a blank line), pretrain.jsonl ({text}), finetune.jsonl ({prompt, completion}
and {text}), eval_known / eval_taught / eval_unknown / eval_ood / eval_mixed.jsonl ({prompt, answer,
split, entity, relation, paraphrase, answerable}) and world.json. The same seed and sizes give
byte-identical files; files already in --out are replaced only with --overwrite. See docs/world.md.`,
  options,
  examples: ['attune world --seed 1 --out ./world', 'attune world --seed 7 --out ./w --known 60 --json'],
  async run(args, io) {
    const v = args.values;
    const existing = WORLD_FILES.filter((file) => existsSync(join(v.out, file)));
    if (existing.length > 0 && !v.overwrite) {
      throw new ConfigError(
        `${v.out} already holds ${existing.join(', ')} (pass --overwrite to replace them, or choose another --out)`,
      );
    }
    const seed = v.seed;
    const world = generateWorld({
      seed,
      knownPeople: checkPeople('known', v.known),
      taughtPeople: checkPeople('taught', v.taught),
      unknownPeople: checkPeople('unknown', v.unknown),
    });
    const result = writeWorld(world, v.out);
    const c = result.counts;
    io.line(
      `world (seed ${seed}): ${c.people.known} known, ${c.people.taught} taught, ${c.people.unknown} unknown people; ${c.cities} cities in ${c.countries} countries`,
    );
    const recordsOf: Record<(typeof WORLD_FILES)[number], number | null> = {
      'corpus.txt': c.pretrainDocuments,
      'pretrain.jsonl': c.pretrainDocuments,
      'finetune.jsonl': c.finetuneRecords.qa + c.finetuneRecords.text,
      'eval_known.jsonl': c.eval.known,
      'eval_taught.jsonl': c.eval.taught,
      'eval_unknown.jsonl': c.eval.unknown,
      'eval_ood.jsonl': c.eval.ood,
      'eval_mixed.jsonl': c.eval.mixed,
      'world.json': null,
    };
    io.out(
      formatTable(WORLD_FILES.map((file) => ({ file, records: recordsOf[file], bytes: result.files[file] }))),
    );
    io.line(`output: ${result.out}`);
    if (v.json) io.json({ out: result.out, seed, counts: c, files: result.files });
    return 0;
  },
});
