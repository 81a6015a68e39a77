import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type OptionsSpec, parseOptions, wantsHelp } from '../../../src/cli/args.ts';
import { closest, editDistance } from '../../../src/cli/suggest.ts';
import { UsageError } from '../../../src/errors.ts';

const options = {
  threads: { type: 'string', short: 't', description: 'threads' },
  backend: { type: 'string', default: 'both', description: 'backend' },
  json: { type: 'boolean', description: 'json' },
} satisfies OptionsSpec;

function usageMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof UsageError, `expected a UsageError, got ${String(err)}`);
    assert.ok(!err.message.includes('\n'), 'usage errors are one line');
    return err.message;
  }
  assert.fail('expected a UsageError');
}

describe('parseOptions', () => {
  it('applies defaults: booleans false, strings their default or undefined', () => {
    const { values, positionals } = parseOptions([], options, 'attune x');
    assert.equal(values.json, false);
    assert.equal(values.backend, 'both');
    assert.equal(values.threads, undefined);
    assert.deepEqual(positionals, []);
  });

  it('parses long, short and inline values', () => {
    const { values } = parseOptions(['-t', '4', '--backend=js', '--json'], options, 'attune x');
    assert.equal(values.threads, '4');
    assert.equal(values.backend, 'js');
    assert.equal(values.json, true);
  });

  it('suggests the closest flag for a typo', () => {
    assert.equal(
      usageMessage(() => parseOptions(['--thread', '4'], options, 'attune bench gemm')),
      "unknown option '--thread' for 'attune bench gemm' (did you mean --threads?)",
    );
    assert.match(
      usageMessage(() => parseOptions(['--jsno'], options, 'attune x')),
      /did you mean --json\?/,
    );
    assert.match(
      usageMessage(() => parseOptions(['--backend-name=js'], options, 'attune x')),
      /unknown option '--backend-name'.*did you mean --backend\?/,
    );
  });

  it('reads a single-dash word as the long flag it resembles', () => {
    assert.match(
      usageMessage(() => parseOptions(['-json'], options, 'attune x')),
      /'-json'.*did you mean --json\?/,
    );
  });

  it('points to --help when no flag is close', () => {
    assert.equal(
      usageMessage(() => parseOptions(['--frobnicate'], options, 'attune x')),
      "unknown option '--frobnicate' for 'attune x' (see 'attune x --help')",
    );
  });

  it('rejects a missing value, a value on a boolean and positional arguments', () => {
    assert.equal(
      usageMessage(() => parseOptions(['--threads'], options, 'attune x')),
      '--threads: expected a value, got nothing',
    );
    assert.equal(
      usageMessage(() => parseOptions(['--json=yes'], options, 'attune x')),
      '--json: expected no value (it is a flag), got "yes"',
    );
    assert.match(
      usageMessage(() => parseOptions(['--threads', '-3'], options, 'attune x')),
      /--threads=<value>/,
    );
    assert.match(
      usageMessage(() => parseOptions(['extra'], options, 'attune x')),
      /unexpected argument 'extra'/,
    );
  });

  it('accepts positional arguments when the command allows them', () => {
    assert.deepEqual(parseOptions(['a', 'b'], options, 'attune x', true).positionals, ['a', 'b']);
  });
});

describe('wantsHelp', () => {
  it('finds -h/--help before --', () => {
    assert.equal(wantsHelp(['--json', '--help']), true);
    assert.equal(wantsHelp(['-h']), true);
    assert.equal(wantsHelp(['--json']), false);
    assert.equal(wantsHelp(['--', '--help']), false);
  });
});

const typed = {
  seed: { type: 'integer', min: 0, default: 0, description: 'seed' },
  'max-new-tokens': { type: 'integer', min: 1, default: 64, description: 'tokens' },
  temperature: { type: 'number', min: 0, default: 0, description: 'temperature' },
  'top-p': { type: 'number', min: 0, max: 1, exclusiveMin: true, default: 1, description: 'nucleus' },
  rate: {
    type: 'number',
    min: 0,
    max: 1,
    exclusiveMin: true,
    exclusiveMax: true,
    default: 0.1,
    description: 'p',
  },
  metric: {
    type: 'choice',
    choices: ['exact', 'contains', 'rougeL'],
    default: 'exact',
    description: 'grading',
  },
  methods: { type: 'choice', list: true, choices: ['linear', 'ties'], description: 'methods' },
  sizes: { type: 'integer', list: true, min: 1, description: 'sizes' },
  out: { type: 'path', required: true, description: 'output', valueName: '<dir>' },
  stop: { type: 'string', multiple: true, description: 'stop' },
  data: { type: 'path', description: 'data', deprecatedAliases: ['input'] },
} as const satisfies OptionsSpec;

const parseTyped = (argv: string[]) => parseOptions([...argv, '--out', 'o'], typed, 'attune x');

describe('typed options', () => {
  it('gives numbers as numbers, defaults typed, repeatable options as arrays', () => {
    const { values } = parseTyped(['--seed', '7', '--temperature=0.5', '--stop', 'a', '--stop', 'b']);
    assert.equal(values.seed, 7);
    assert.equal(values.temperature, 0.5);
    assert.equal(values['max-new-tokens'], 64);
    assert.equal(values['top-p'], 1);
    assert.equal(values.metric, 'exact');
    assert.deepEqual(values.stop, ['a', 'b']);
    assert.equal(values.methods, undefined);
    assert.equal(values.out, 'o');
    assert.deepEqual(parseTyped([]).values.stop, []);
  });

  it('reports every bad value in one shape: --name: expected <kind>, got "<value>"', () => {
    const cases: [string[], string][] = [
      [['--seed', 'x'], '--seed: expected an integer >= 0, got "x"'],
      [['--seed=2.5'], '--seed: expected an integer >= 0, got "2.5"'],
      [['--seed='], '--seed: expected an integer >= 0, got ""'],
      [['--max-new-tokens=-5'], '--max-new-tokens: expected an integer >= 1, got "-5"'],
      // a negative number after a numeric flag is its value, not a flag
      [['--max-new-tokens', '-5'], '--max-new-tokens: expected an integer >= 1, got "-5"'],
      [['--temperature=-1'], '--temperature: expected a number >= 0, got "-1"'],
      [['--top-p', '2'], '--top-p: expected a number in (0, 1], got "2"'],
      [['--top-p', '0'], '--top-p: expected a number in (0, 1], got "0"'],
      [['--rate', '1'], '--rate: expected a number in (0, 1), got "1"'],
      [['--temperature', 'Infinity'], '--temperature: expected a number >= 0, got "Infinity"'],
      [['--seed', '0x10'], '--seed: expected an integer >= 0, got "0x10"'],
      [['--seed', '1e3'], '--seed: expected an integer >= 0, got "1e3"'],
      [['--temperature', '0x1'], '--temperature: expected a number >= 0, got "0x1"'],
      [
        ['--metric', 'exat'],
        '--metric: expected one of exact, contains, rougeL, got "exat" (did you mean "exact"?)',
      ],
      [
        ['--methods', 'linear,tie'],
        '--methods: expected comma-separated names from linear, ties, got "linear,tie" (did you mean "ties"?)',
      ],
      [['--sizes', '256,,512'], '--sizes: expected comma-separated integers >= 1, got "256,,512"'],
      [['--sizes', '256,x'], '--sizes: expected comma-separated integers >= 1, got "256,x"'],
      [['--data', ''], '--data: expected a path, got ""'],
    ];
    for (const [argv, message] of cases)
      assert.equal(
        usageMessage(() => parseTyped(argv)),
        message,
        argv.join(' '),
      );
  });

  it('accepts the bounds themselves where they are inclusive', () => {
    assert.equal(parseTyped(['--top-p', '1']).values['top-p'], 1);
    assert.equal(parseTyped(['--temperature', '0']).values.temperature, 0);
    assert.equal(parseTyped(['--seed', '0']).values.seed, 0);
    assert.equal(parseTyped(['--temperature', '1e-3']).values.temperature, 0.001);
    assert.equal(parseTyped(['--temperature', '.5']).values.temperature, 0.5);
    assert.deepEqual(parseTyped(['--sizes', '256, 512']).values.sizes, [256, 512]);
    assert.deepEqual(parseTyped(['--methods', 'ties,linear']).values.methods, ['ties', 'linear']);
  });

  it('requires required options, naming the value', () => {
    assert.equal(
      usageMessage(() => parseOptions([], typed, 'attune x')),
      '--out <dir> is required',
    );
  });

  it('accepts a deprecated alias with a one-line note, but not both names', () => {
    const parsed = parseTyped(['--input', 'a.jsonl']);
    assert.equal(parsed.values.data, 'a.jsonl');
    assert.deepEqual(parsed.notes, ['note: --input is deprecated; use --data']);
    assert.deepEqual(parseTyped(['--data', 'a.jsonl']).notes, []);
    assert.match(
      usageMessage(() => parseTyped(['--input', 'a', '--data', 'b'])),
      /give only one of them/,
    );
  });

  it('checks declared positional arguments', () => {
    const positionals = [{ name: 'config.yaml', description: 'the config' }];
    assert.deepEqual(parseOptions(['a.yaml'], options, 'attune train', positionals).positionals, ['a.yaml']);
    assert.equal(
      usageMessage(() => parseOptions([], options, 'attune train', positionals)),
      'missing argument <config.yaml> (the config); usage: attune train <config.yaml>',
    );
    assert.equal(
      usageMessage(() => parseOptions(['a', 'b'], options, 'attune train', positionals)),
      "unexpected argument 'b' for 'attune train' (it takes <config.yaml>)",
    );
  });
});

describe('closest', () => {
  it('edit distance', () => {
    assert.equal(editDistance('kitten', 'sitting'), 3);
    assert.equal(editDistance('', 'abc'), 3);
    assert.equal(editDistance('same', 'same'), 0);
  });

  it('prefers a unique prefix, then a small edit distance, else nothing', () => {
    assert.equal(closest('thr', ['threads', 'json']), 'threads');
    assert.equal(closest('jsno', ['threads', 'json']), 'json');
    assert.equal(closest('doctr', ['doctor', 'bench']), 'doctor');
    assert.equal(closest('zzzzzz', ['doctor', 'bench']), null);
    assert.equal(closest('x', ['ab', 'cd']), null);
    assert.equal(closest('', ['ab']), null);
  });
});
