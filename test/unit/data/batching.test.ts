/** data/batching: padding, masks, seeded shuffling, packing, exact resume. Synthetic examples, no model. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type Batch,
  DataLoader,
  type DataLoaderOptions,
  padTokenIdOf,
  shiftLabels,
} from '../../../src/data/batching.ts';
import { IGNORE_INDEX, type TokenizedExample } from '../../../src/data/tokenize.ts';
import { ConfigError } from '../../../src/errors.ts';
import { Tokenizer } from '../../../src/io/tokenizer.ts';
import { testModelDir } from '../../helpers/models-env.ts';

const M = IGNORE_INDEX;
const PAD = 0;

/** An example with the given ids and labels (default: all trained), from line `line`. */
function example(ids: number[], labels: number[] = ids, line = 1): TokenizedExample {
  return {
    inputIds: Int32Array.from(ids),
    labels: Int32Array.from(labels),
    file: 'train.jsonl',
    line,
    truncatedTokens: 0,
  };
}

/** `count` examples of varied lengths whose ids identify them: example i holds 100*i + 1, 100*i + 2, ... */
function numbered(count: number): TokenizedExample[] {
  return Array.from({ length: count }, (_, i) => {
    const length = 2 + ((i * 7) % 5);
    const ids = Array.from({ length }, (_, t) => 100 * i + t + 1);
    const labels = ids.map((id, t) => (t < 1 + (i % 2) ? M : id));
    return example(ids, labels, i + 1);
  });
}

/** A batch as plain data (and its tensors released). */
function plain(batch: Batch) {
  const out = {
    shape: [...batch.inputIds.shape],
    inputIds: [...(batch.inputIds.data as Int32Array)],
    labels: [...(batch.labels.data as Int32Array)],
    attentionMask: [...(batch.attentionMask.data as Int32Array)],
    numTrainedTokens: batch.numTrainedTokens,
    numTokens: batch.numTokens,
    numExamples: batch.numExamples,
    epoch: batch.epoch,
    index: batch.index,
  };
  batch.inputIds.release();
  batch.labels.release();
  batch.attentionMask.release();
  return out;
}

/** The first id of each row of a batch, identifying the (first) example of the row. */
function rowExamples(batch: ReturnType<typeof plain>): number[] {
  const [B, T] = batch.shape as [number, number];
  return Array.from({ length: B }, (_, r) => Math.floor(batch.inputIds[r * T]! / 100));
}

function take(loader: DataLoader, n: number) {
  return Array.from({ length: n }, () => plain(loader.next()));
}

describe('DataLoader padding and masks', () => {
  it('right-pads to the longest row with the pad id, mask 0 and label -100 on padding', () => {
    const examples = [example([5, 6, 7], [M, 6, 7]), example([8, 9, 10, 11, 12]), example([13, 14], [M, M])];
    const loader = new DataLoader(examples, { batchSize: 3, padTokenId: PAD, shuffle: false });
    const batch = loader.next();
    assert.equal(batch.inputIds.dtype, 'i32');
    assert.equal(batch.labels.dtype, 'i32');
    assert.equal(batch.attentionMask.dtype, 'i32');
    const b = plain(batch);
    assert.deepEqual(b.shape, [3, 5]);
    assert.deepEqual(b.inputIds, [5, 6, 7, PAD, PAD, 8, 9, 10, 11, 12, 13, 14, PAD, PAD, PAD]);
    assert.deepEqual(b.labels, [M, 6, 7, M, M, 8, 9, 10, 11, 12, M, M, M, M, M]);
    assert.deepEqual(b.attentionMask, [1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0]);
    assert.equal(b.numTokens, 10);
    // trained positions t >= 1: row 0 -> 6, 7; row 1 -> 9..12 (8 at t = 0 is never predicted); row 2 -> none
    assert.equal(b.numTrainedTokens, 6);
    assert.equal(b.numExamples, 3);
    assert.deepEqual([b.epoch, b.index], [0, 0]);
    assert.deepEqual([...batch.exampleOf], [0, 0, 0, -1, -1, 1, 1, 1, 1, 1, 2, 2, -1, -1, -1]);
    assert.deepEqual([...batch.positionOf], [0, 1, 2, -1, -1, 0, 1, 2, 3, 4, 0, 1, -1, -1, -1]);
  });

  it('with packing, each token knows its example and its position inside it', () => {
    const examples = [example([5, 6]), example([7, 8, 9]), example([10])];
    const loader = new DataLoader(examples, {
      batchSize: 1,
      padTokenId: PAD,
      shuffle: false,
      packing: true,
      maxLength: 6,
    });
    const batch = loader.next();
    assert.deepEqual([...batch.exampleOf], [0, 0, 1, 1, 1, 2]);
    assert.deepEqual([...batch.positionOf], [0, 1, 0, 1, 2, 0]);
  });

  it('shiftLabels gives the next-token targets that numTrainedTokens counts', () => {
    const labels = Int32Array.from([M, 6, 7, M, M, 8, 9, 10, 11, 12]);
    const targets = shiftLabels(labels, 2, 5);
    assert.deepEqual([...targets], [6, 7, M, M, M, 9, 10, 11, 12, M]);
    assert.throws(() => shiftLabels(labels, 3, 5), RangeError);
  });

  it('runs epoch after epoch; the last batch is smaller unless dropLast', () => {
    const examples = numbered(5);
    const loader = new DataLoader(examples, { batchSize: 2, padTokenId: PAD, shuffle: false });
    assert.equal(loader.batchesPerEpoch(), 3);
    const batches = take(loader, 4);
    assert.deepEqual(
      batches.map((b) => [b.epoch, b.index, ...rowExamples(b)]),
      [
        [0, 0, 0, 1],
        [0, 1, 2, 3],
        [0, 2, 4],
        [1, 0, 0, 1],
      ],
    );
    const dropping = new DataLoader(examples, {
      batchSize: 2,
      padTokenId: PAD,
      shuffle: false,
      dropLast: true,
    });
    assert.equal(dropping.batchesPerEpoch(), 2);
    assert.deepEqual(
      take(dropping, 3).map((b) => [b.epoch, b.index, ...rowExamples(b)]),
      [
        [0, 0, 0, 1],
        [0, 1, 2, 3],
        [1, 0, 0, 1],
      ],
    );
    assert.equal(loader.stats.examples, 5);
    assert.equal(
      loader.stats.tokens,
      examples.reduce((s, e) => s + e.inputIds.length, 0),
    );
  });

  it('validates its options and examples', () => {
    const examples = numbered(3);
    const bad: [Partial<DataLoaderOptions>, RegExp][] = [
      [{ batchSize: 0 }, /'batchSize' must be a positive integer, found 0/],
      [{ padTokenId: -1 }, /'padTokenId' must be a token id/],
      [{ packing: true }, /'maxLength' is required with packing/],
      [{ batchSize: 4, dropLast: true }, /3 rows make no full batch of 4/],
    ];
    for (const [options, message] of bad) {
      assert.throws(
        () => new DataLoader(examples, { batchSize: 2, padTokenId: PAD, ...options }),
        (e: unknown) => e instanceof ConfigError && message.test(e.message),
      );
    }
    assert.throws(() => new DataLoader([], { batchSize: 1, padTokenId: PAD }), ConfigError);
  });
});

describe('DataLoader shuffling', () => {
  it('is a permutation per epoch, determined by the seed, different across epochs and seeds', () => {
    const examples = numbered(12);
    const order = (seed: number, epochs: number) => {
      const loader = new DataLoader(examples, { batchSize: 1, padTokenId: PAD, seed });
      return Array.from({ length: epochs }, () => take(loader, 12).flatMap(rowExamples));
    };
    const a = order(7, 3);
    for (const epoch of a)
      assert.deepEqual(
        [...epoch].sort((x, y) => x - y),
        [...Array(12).keys()],
      );
    assert.deepEqual(order(7, 3), a);
    assert.notDeepEqual(a[0], a[1]);
    assert.notDeepEqual(order(8, 1)[0], a[0]);
    assert.notDeepEqual(a[0], [...Array(12).keys()]);
  });
});

describe('DataLoader packing', () => {
  it('concatenates examples greedily up to maxLength, each keeping its own labels', () => {
    const examples = [
      example([1, 2, 3], [M, 2, 3]),
      example([4, 5, 6, 7], [M, M, 6, 7]),
      example([8, 9]),
      example([10, 11, 12, 13, 14], [M, 11, 12, 13, 14]),
      example([15]),
    ];
    const loader = new DataLoader(examples, {
      batchSize: 2,
      padTokenId: PAD,
      shuffle: false,
      packing: true,
      maxLength: 7,
    });
    const [first, second] = take(loader, 2);
    assert.deepEqual(first!.shape, [2, 7]);
    assert.deepEqual(first!.inputIds, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
    assert.deepEqual(first!.labels, [M, 2, 3, M, M, 6, 7, 8, 9, M, 11, 12, 13, 14]);
    assert.deepEqual(first!.attentionMask, Array(14).fill(1));
    assert.equal(first!.numExamples, 4);
    // position 0 of each row is never predicted: row 0 -> 2,3,6,7; row 1 -> 9,11,12,13,14
    assert.equal(first!.numTrainedTokens, 9);
    assert.deepEqual(second!.shape, [1, 1]);
    assert.deepEqual(second!.inputIds, [15]);
    assert.equal(second!.numExamples, 1);
    assert.equal(take(loader, 1)[0]!.epoch, 1);
  });

  it('pads packed rows to the longest row and keeps every example once per epoch', () => {
    const examples = numbered(20);
    const loader = new DataLoader(examples, {
      batchSize: 3,
      padTokenId: PAD,
      seed: 3,
      packing: true,
      maxLength: 9,
    });
    const seen: number[] = [];
    const batches = Array.from({ length: loader.batchesPerEpoch() }, () => plain(loader.next()));
    for (const b of batches) {
      const [B, T] = b.shape as [number, number];
      assert.ok(T <= 9);
      for (let r = 0; r < B; r++) {
        for (let t = 0; t < T; t++) {
          const i = r * T + t;
          if (b.attentionMask[i] === 0) {
            assert.equal(b.inputIds[i], PAD);
            assert.equal(b.labels[i], M);
          } else if (b.inputIds[i]! % 100 === 1) seen.push(Math.floor(b.inputIds[i]! / 100));
        }
      }
    }
    assert.deepEqual(
      seen.sort((x, y) => x - y),
      [...Array(20).keys()],
    );
  });

  it('rejects an example longer than the packing length', () => {
    assert.throws(
      () =>
        new DataLoader([example([1, 2, 3], undefined, 9)], {
          batchSize: 1,
          padTokenId: PAD,
          packing: true,
          maxLength: 2,
        }),
      (e: unknown) =>
        e instanceof ConfigError &&
        /example 0 \(train\.jsonl:9\) has 3 tokens, more than the packing length 2/.test(e.message),
    );
  });
});

describe('DataLoader state and restore', () => {
  for (const packing of [false, true]) {
    it(`resuming gives exactly the same remaining batches${packing ? ' (packing)' : ''}`, () => {
      const examples = numbered(11);
      const options: DataLoaderOptions = { batchSize: 3, padTokenId: PAD, seed: 42, packing, maxLength: 10 };
      const perEpoch = new DataLoader(examples, options).batchesPerEpoch();
      for (const taken of [0, 1, perEpoch - 1, perEpoch, perEpoch + 2]) {
        const original = new DataLoader(examples, options);
        take(original, taken);
        const saved = JSON.parse(JSON.stringify(original.state()));
        const resumed = new DataLoader(examples, options);
        take(resumed, 1); // a fresh loader that has moved: restore must overwrite its position
        resumed.restore(saved);
        assert.deepEqual(resumed.state(), original.state());
        assert.deepEqual(
          take(resumed, 2 * perEpoch + 1),
          take(original, 2 * perEpoch + 1),
          `after ${taken} batches`,
        );
        assert.deepEqual(resumed.state(), original.state());
      }
    });
  }

  it('counts tokens seen and batches in the state', () => {
    const examples = numbered(4);
    const loader = new DataLoader(examples, { batchSize: 2, padTokenId: PAD, shuffle: false });
    const [a, b] = take(loader, 2);
    const state = loader.state();
    assert.equal(state.tokensSeen, a!.numTokens + b!.numTokens);
    assert.equal(state.trainedTokensSeen, a!.numTrainedTokens + b!.numTrainedTokens);
    assert.equal(state.batchesSeen, 2);
    assert.deepEqual([state.epoch, state.position], [0, 2]);
  });

  it('refuses a state from other data or options, naming what differs', () => {
    const examples = numbered(6);
    const state = new DataLoader(examples, { batchSize: 2, padTokenId: PAD }).state();
    assert.throws(
      () => new DataLoader(examples, { batchSize: 3, padTokenId: PAD }).restore(state),
      (e: unknown) => e instanceof ConfigError && /batchSize 2 in the state, 3 now/.test(e.message),
    );
    assert.throws(
      () => new DataLoader(examples.slice(1), { batchSize: 2, padTokenId: PAD }).restore(state),
      (e: unknown) => e instanceof ConfigError && /examples 6 in the state, 5 now/.test(e.message),
    );
    assert.throws(
      () => new DataLoader(examples, { batchSize: 2, padTokenId: PAD }).restore({ ...state, position: 99 }),
      (e: unknown) =>
        e instanceof ConfigError && /position 99 is past the 3 batches of epoch 0/.test(e.message),
    );
  });
});

describe('padTokenIdOf', () => {
  it("uses the tokenizer's pad token, else EOS", (t) => {
    const tiny = testModelDir('tinystories-656k');
    const gpt2 = testModelDir('tiny-gpt2-random');
    if (tiny.skip !== false || gpt2.skip !== false) {
      t.skip(tiny.skip || gpt2.skip || '');
      return;
    }
    assert.equal(padTokenIdOf(Tokenizer.fromDir(tiny.dir)), 0); // pad_token <unk>
    assert.equal(padTokenIdOf(Tokenizer.fromDir(gpt2.dir)), 50256); // no pad_token: <|endoftext|>
  });

  it('is a ConfigError for a tokenizer with neither', () => {
    assert.throws(() => padTokenIdOf({ padTokenId: null, eosTokenIds: [], origin: '/m' }), ConfigError);
  });
});
