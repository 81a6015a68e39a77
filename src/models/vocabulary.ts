/**
 * Models that work together — members decoded in lock-step (fusion, contrastive decoding), a
 * teacher and its student (distillation) — must share one vocabulary: the same LM-head size and,
 * where both have a tokenizer, the same token for every id. `checkSameVocabulary` is that check.
 */
import { ConfigError } from '../errors.ts';
import type { Tokenizer } from '../io/index.ts';

/** Two models that must work together do not share one vocabulary or tokenizer. */
export class VocabularyMismatchError extends ConfigError {}

/** A tokenizer's vocabulary as the check reads it. */
export type TokenVocabulary = Pick<Tokenizer, 'vocabSize' | 'idToToken'>;

/**
 * A model as the check sees it: how errors name it (its directory, `--strong`, `teacher DIR`),
 * its LM-head size (`vocabSize`, or its `model`'s config), and its tokenizer when it has one.
 */
export type VocabularyOwner = { name: string; tokenizer?: TokenVocabulary | null } & (
  | { vocabSize: number }
  | { model: { config: { vocabSize: number } } }
);

const vocabSizeOf = (o: VocabularyOwner): number =>
  'vocabSize' in o ? o.vocabSize : o.model.config.vocabSize;

/**
 * Throw a VocabularyMismatchError naming `a` and `b` when their vocabulary sizes differ, or when both
 * have a tokenizer and some token id maps to another string (the first such id is named).
 */
export function checkSameVocabulary(a: VocabularyOwner, b: VocabularyOwner): void {
  const va = vocabSizeOf(a);
  const vb = vocabSizeOf(b);
  if (va !== vb)
    throw new VocabularyMismatchError(
      `${a.name} and ${b.name} must share one vocabulary: vocab_size ${va} vs ${vb}`,
    );
  if (!a.tokenizer || !b.tokenizer) return;
  if (a.tokenizer.vocabSize !== b.tokenizer.vocabSize)
    throw new VocabularyMismatchError(
      `${a.name} and ${b.name} must share one tokenizer: ${a.tokenizer.vocabSize} vs ${b.tokenizer.vocabSize} tokens in tokenizer.json`,
    );
  for (let id = 0; id < a.tokenizer.vocabSize; id++) {
    const ta = a.tokenizer.idToToken(id);
    const tb = b.tokenizer.idToToken(id);
    if (ta !== tb)
      throw new VocabularyMismatchError(
        `${a.name} and ${b.name} must share one tokenizer: token id ${id} is ${JSON.stringify(ta)} vs ${JSON.stringify(tb)}`,
      );
  }
}
