/** `attune generate`: continue a prompt (or a chat message) with a model, seeded. */
import { UsageError } from '../../errors.ts';
import { generate } from '../../models/index.ts';
import { jsonOption, parseInteger, parsePositiveNumber } from '../args.ts';
import { defineCommand } from '../command.ts';
import { loadModelFromFlags, modelOptions } from '../model-options.ts';

const options = {
  ...modelOptions,
  prompt: {
    type: 'string',
    description: 'text to continue (encoded with the tokenizer, special tokens added)',
    valueName: '<text>',
  },
  chat: {
    type: 'string',
    description: "a user message, rendered with the model's chat template",
    valueName: '<text>',
  },
  'max-new-tokens': {
    type: 'string',
    description: 'tokens to generate at most',
    default: '64',
    valueName: '<n>',
  },
  temperature: {
    type: 'string',
    description: '0 = greedy; otherwise sample at this temperature',
    default: '0',
    valueName: '<t>',
  },
  'top-k': {
    type: 'string',
    description: 'sample among the k most likely tokens (0 = off)',
    default: '0',
    valueName: '<k>',
  },
  'top-p': {
    type: 'string',
    description: 'nucleus sampling threshold (1 = off)',
    default: '1',
    valueName: '<p>',
  },
  seed: { type: 'string', description: 'sampling seed', default: '0', valueName: '<n>' },
  stop: {
    type: 'string',
    description: 'stop string (stops once the continuation contains it)',
    valueName: '<text>',
  },
  json: jsonOption,
} as const;

/** `attune generate --model DIR (--prompt TEXT | --chat TEXT) [...]`. */
export const generateCommand = defineCommand({
  name: 'generate',
  summary: 'Generate text from a model (greedy or sampled, KV cache, seeded)',
  description: `Encodes --prompt as transformers would (special tokens included) or renders --chat through
the chat template with a generation prompt, then generates up to --max-new-tokens tokens, stopping at
an EOS id of config.json / generation_config.json or at --stop. --json adds the prompt ids, the
generated ids and the text.`,
  options,
  examples: [
    'attune generate --model ./SmolLM2-135M --prompt "Once upon a time"',
    'attune generate --model ./model --adapter runs/quickstart/adapter --chat "Who are you?" --temperature 0.7 --seed 1 --json',
  ],
  async run(args, io) {
    const v = args.values;
    if ((v.prompt === undefined) === (v.chat === undefined))
      throw new UsageError('generate: give exactly one of --prompt or --chat');
    const maxNewTokens = parseInteger('--max-new-tokens', v['max-new-tokens'], 1);
    const temperature = v.temperature === '0' ? 0 : parsePositiveNumber('--temperature', v.temperature);
    const topK = parseInteger('--top-k', v['top-k'], 0);
    const topP = parsePositiveNumber('--top-p', v['top-p']);
    const seed = parseInteger('--seed', v.seed, 0);
    const loaded = loadModelFromFlags(v, 'generate');
    const tokenizer = loaded.tokenizer;
    if (!tokenizer) throw new UsageError(`generate: ${loaded.dir} has no tokenizer.json`);
    const promptIds =
      v.chat !== undefined
        ? tokenizer.encodeChat([{ role: 'user', content: v.chat }], { addGenerationPrompt: true })
        : tokenizer.encode(v.prompt!);
    const result = generate(loaded.model, promptIds, {
      maxNewTokens,
      temperature,
      topK,
      topP,
      seed,
      eosTokenIds: loaded.eosTokenIds,
      stopStrings: v.stop ? [v.stop] : [],
      tokenizer,
    });
    io.line(result.text ?? '');
    if (v.json) {
      io.json({
        prompt_ids: promptIds,
        generated_ids: result.generatedIds,
        text: result.text,
        stop_reason: result.stopReason,
      });
    }
    return 0;
  },
});
