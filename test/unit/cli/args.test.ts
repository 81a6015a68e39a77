import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type OptionsSpec,
  parseChoice,
  parseInteger,
  parseIntegerList,
  parseOptions,
  wantsHelp,
} from '../../../src/cli/args.ts';
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
      'option --threads needs a value',
    );
    assert.equal(
      usageMessage(() => parseOptions(['--json=yes'], options, 'attune x')),
      'option --json does not take a value',
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

describe('value parsers', () => {
  it('parseInteger', () => {
    assert.equal(parseInteger('threads', '8'), 8);
    assert.match(
      usageMessage(() => parseInteger('threads', '0')),
      /--threads expects an integer >= 1, found '0'/,
    );
    assert.match(
      usageMessage(() => parseInteger('threads', '2.5')),
      /found '2.5'/,
    );
    assert.match(
      usageMessage(() => parseInteger('threads', '')),
      /--threads/,
    );
  });

  it('parseIntegerList', () => {
    assert.deepEqual(parseIntegerList('sizes', '256, 512,1024'), [256, 512, 1024]);
    assert.match(
      usageMessage(() => parseIntegerList('sizes', '256,,512')),
      /comma-separated/,
    );
    assert.match(
      usageMessage(() => parseIntegerList('sizes', '256,x')),
      /found 'x' in '256,x'/,
    );
  });

  it('parseChoice names the closest choice', () => {
    assert.equal(parseChoice('backend', 'js', ['js', 'native', 'both']), 'js');
    assert.equal(
      usageMessage(() => parseChoice('backend', 'nativ', ['js', 'native', 'both'])),
      "option --backend expects one of js, native, both, found 'nativ' (did you mean 'native'?)",
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
