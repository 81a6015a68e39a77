/**
 * Verbalised confidence (Tian et al. 2023, "Just Ask for Calibration"; LM-Polygraph's Verbalized /
 * Linguistic 1S): after its answer the model is asked
 *   "How confident are you that your answer is correct? Reply with a number from 0 to 100."
 * (a chat record: as the next user turn after the answer, through the chat template; a prompt
 * record: appended as text followed by "Confidence:"), answers greedily (at most 8 tokens, one
 * line), and the reply is parsed: the first number (0-100, a trailing % allowed; a decimal in
 * [0, 1] such as 0.8 is read as a probability) or a probability phrase (LM-Polygraph's Linguistic
 * 1S table, plus high / medium / low). The score is 1 - confidence; an unparseable reply gives no
 * value (null in predictions.jsonl, counted in eval's summary).
 */
import { generate } from '../../models/index.ts';
import { registerExtraPassScore } from './registry.ts';

/** The question asked after the answer. */
export const VERBALIZED_QUESTION =
  'How confident are you that your answer is correct? Reply with a number from 0 to 100.';

/** Probability phrases and their values (longest phrases are matched first). */
export const CONFIDENCE_WORDS: Readonly<Record<string, number>> = {
  'almost certain': 0.95,
  certain: 0.95,
  'highly likely': 0.9,
  'very likely': 0.9,
  'very good chance': 0.8,
  'we believe': 0.75,
  probably: 0.7,
  likely: 0.7,
  'better than even': 0.58,
  'about even': 0.5,
  'probably not': 0.25,
  'we doubt': 0.2,
  unlikely: 0.2,
  'little chance': 0.1,
  'chances are slight': 0.1,
  improbable: 0.1,
  'highly unlikely': 0.05,
  'almost no chance': 0.02,
  high: 0.9,
  medium: 0.5,
  low: 0.1,
};

/** The confidence in [0, 1] a reply states, or null when it states none. */
export function parseVerbalizedConfidence(reply: string): number | null {
  const number = /(\d+(?:\.\d+)?)\s*(%?)/.exec(reply);
  if (number) {
    const value = Number(number[1]);
    if (number[1]!.includes('.') && value <= 1 && number[2] === '') return value;
    if (value <= 100) return value / 100;
    return null;
  }
  const text = reply.toLowerCase();
  const phrases = Object.keys(CONFIDENCE_WORDS).sort((a, b) => b.length - a.length);
  let best: { at: number; value: number } | null = null;
  for (const phrase of phrases) {
    const at = text.search(new RegExp(`\\b${phrase}\\b`));
    // the earliest phrase wins; at one position the longest ("probably not" before "probably")
    if (at >= 0 && (best === null || at < best.at)) best = { at, value: CONFIDENCE_WORDS[phrase]! };
  }
  return best?.value ?? null;
}

registerExtraPassScore({
  name: 'verbalized',
  description: `1 - the confidence the model states when asked "${VERBALIZED_QUESTION}" (a number or a probability phrase; unparseable: null)`,
  computeExtra(ctx) {
    const ids = ctx.messages
      ? ctx.tokenizer.encodeChat(
          [
            ...ctx.messages,
            { role: 'assistant', content: ctx.answer },
            { role: 'user', content: VERBALIZED_QUESTION },
          ],
          { addGenerationPrompt: true, chatTemplate: ctx.chatTemplate },
        )
      : [
          ...ctx.promptIds,
          ...ctx.answerIds,
          ...ctx.tokenizer.encodeContinuation(`\n${VERBALIZED_QUESTION}\nConfidence:`),
        ];
    const reply = generate(ctx.model, ids, {
      maxNewTokens: 8,
      temperature: 0,
      eosTokenIds: ctx.eosTokenIds,
      stopStrings: ['\n'],
      tokenizer: ctx.tokenizer,
    });
    const confidence = parseVerbalizedConfidence(reply.text ?? '');
    return confidence === null ? Number.NaN : 1 - confidence;
  },
});
