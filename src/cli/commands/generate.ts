/** `attune generate`: continue a prompt (or a chat message) with a model, seeded. */
import { UsageError } from '../../errors.ts';
import { generate } from '../../models/index.ts';
import {
  adapterIdentity,
  answerLogits,
  calibratedConfidence,
  checkCalibratorScore,
  checkFittedModel,
  loadCalibratorFile,
  modelIdentity,
  SCORE_NAMES,
  sequenceConfidence,
  sequenceScores,
  tokensFromStats,
} from '../../uq/index.ts';
import { importOption, jsonOption } from '../args.ts';
import { defineCommand } from '../command.ts';
import {
  fusionOptions,
  loadRunnableFromFlags,
  modelOptions,
  readChatTemplate,
  requireChatTemplate,
  unescapeStop,
} from '../model-options.ts';
import { importPlugins } from '../plugins.ts';

const options = {
  ...modelOptions,
  model: { ...modelOptions.model, required: false },
  ...fusionOptions,
  prompt: {
    type: 'string',
    description: 'text to continue (encoded with the tokenizer, special tokens added)',
    valueName: '<text>',
  },
  chat: {
    type: 'string',
    description: "a user message, rendered with the model's chat template (or --chat-template)",
    valueName: '<text>',
  },
  'chat-template': {
    type: 'path',
    description: 'Jinja chat template file for --chat, for models that ship none (or to replace theirs)',
    valueName: '<file>',
  },
  'max-new-tokens': { type: 'integer', min: 1, description: 'tokens to generate at most', default: 64 },
  temperature: {
    type: 'number',
    min: 0,
    description: '0 = greedy; otherwise sample at this temperature',
    default: 0,
    valueName: '<t>',
  },
  'top-k': {
    type: 'integer',
    min: 0,
    description: 'sample among the k most likely tokens (0 = off)',
    default: 0,
    valueName: '<k>',
  },
  'top-p': {
    type: 'number',
    min: 0,
    max: 1,
    exclusiveMin: true,
    description: 'nucleus sampling threshold (1 = off)',
    default: 1,
    valueName: '<p>',
  },
  seed: { type: 'integer', min: 0, description: 'sampling seed', default: 0 },
  stop: {
    type: 'string',
    description: 'stop string (stops once the continuation contains it; "\\n" = newline)',
    valueName: '<text>',
  },
  calibrator: {
    type: 'path',
    description: 'calibrator JSON (attune calibrate fit): --json reports the calibrated confidence',
    valueName: '<file>',
  },
  import: importOption,
  json: jsonOption,
} as const;

/** `attune generate --model DIR (--prompt TEXT | --chat TEXT) [...]`. */
export const generateCommand = defineCommand({
  name: 'generate',
  summary: 'Generate text from a model (greedy or sampled, KV cache, seeded)',
  description: `Encodes --prompt as transformers would (special tokens included) or renders --chat through
the chat template with a generation prompt (the model's, or --chat-template FILE for a model that
ships none), then generates up to --max-new-tokens tokens, stopping at
an EOS id of config.json / generation_config.json or at --stop. --json adds the prompt ids, the
generated ids, the text and the confidence exp(mean log-prob) of the generated tokens (the EOS or
stop-completing token excluded); with --calibrator (refused when fitted on another model or adapter)
that confidence is the calibrated one and the raw one sits in "uncalibrated".

Weak-to-strong fusion: instead of --model, --strong DIR[:ADAPTER] with one or more experts
--weak-tuned DIR[:ADAPTER] and their --weak-base DIR[:ADAPTER] (one shared by every expert, or one
per --weak-tuned, paired in order) decodes z_strong + sum_i w_i (z_tuned,i - z_base,i), with w chosen
per token by the dynamic KL rule (--fusion-weights dynamic) or fixed (--fusion-weights 1.0: proxy
tuning). Every model must share the strong model's vocabulary. --json adds each token's weights.`,
  options,
  examples: [
    'attune generate --model ./SmolLM2-135M --prompt "Once upon a time"',
    'attune generate --strong ./large --weak-base ./small --weak-tuned ./small:runs/facts/adapter --prompt "Q: ..." --json',
    'attune generate --model ./model --adapter runs/quickstart/adapter --chat "Who are you?" --temperature 0.7 --seed 1 --json',
    'attune generate --model ./base --chat "Hi" --chat-template chatml.jinja',
  ],
  async run(args, io) {
    await importPlugins(args.values.import);
    const v = args.values;
    if ((v.prompt === undefined) === (v.chat === undefined))
      throw new UsageError('generate: give exactly one of --prompt or --chat');
    if (v['chat-template'] !== undefined && v.chat === undefined)
      throw new UsageError('generate: --chat-template goes with --chat');
    if (v.calibrator !== undefined && v.strong !== undefined)
      throw new UsageError(
        'generate: --calibrator is fitted on one model; it does not apply to a fusion (--strong)',
      );
    if (v.calibrator !== undefined && !v.json)
      throw new UsageError(
        'generate: --calibrator goes with --json (the calibrated confidence is reported there)',
      );
    const chatTemplate = v['chat-template'] !== undefined ? readChatTemplate(v['chat-template']) : undefined;
    const calibrator = v.calibrator !== undefined ? loadCalibratorFile(v.calibrator) : undefined;
    // a calibrator fitted from a predictions file names no model: nothing to hash or compare
    if (calibrator?.fittedOn?.model && v.model !== undefined)
      checkFittedModel(
        calibrator.fittedOn,
        v.calibrator!,
        modelIdentity(v.model),
        v.adapter !== undefined ? adapterIdentity(v.adapter) : null,
      );
    if (calibrator) checkCalibratorScore(calibrator, ['confidence', ...SCORE_NAMES]);
    const loaded = loadRunnableFromFlags(v, 'generate');
    const tokenizer = loaded.tokenizer;
    if (!tokenizer) throw new UsageError(`generate: ${loaded.dir} has no tokenizer.json`);
    if (v.chat !== undefined && chatTemplate === undefined) requireChatTemplate(tokenizer, 'generate --chat');
    const promptIds =
      v.chat !== undefined
        ? tokenizer.encodeChat([{ role: 'user', content: v.chat }], {
            addGenerationPrompt: true,
            chatTemplate,
          })
        : tokenizer.encode(v.prompt!);
    // a fusion's weights of each generated token (read as the token is chosen)
    const fusionWeights: number[][] = [];
    const result = generate(loaded.model, promptIds, {
      onToken: loaded.fused ? () => fusionWeights.push([...loaded.fused!.lastWeights]) : undefined,
      maxNewTokens: v['max-new-tokens'],
      temperature: v.temperature,
      topK: v['top-k'],
      topP: v['top-p'],
      seed: v.seed,
      eosTokenIds: loaded.eosTokenIds,
      stopStrings: v.stop ? [unescapeStop(v.stop)] : [],
      tokenizer,
      returnStats: v.json,
    });
    io.line(result.text ?? '');
    if (v.json) {
      // the answer's tokens exclude the EOS token / the token that completed a stop string (as eval)
      const kept =
        result.stopReason === 'length' ? result.generatedIds.length : result.generatedIds.length - 1;
      const answerIds = result.generatedIds.slice(0, kept);
      const stats = result.tokenStats!.slice(0, kept);
      const tokens = tokensFromStats(stats);
      const raw = sequenceConfidence(tokens);
      const confidence = calibrator
        ? calibratedConfidence(calibrator, {
            confidence: raw,
            scores: sequenceScores(tokens),
            answerIds,
            logits: () => answerLogits(loaded.model, promptIds, answerIds),
          })
        : raw;
      io.json({
        prompt_ids: promptIds,
        generated_ids: result.generatedIds,
        text: result.text,
        stop_reason: result.stopReason,
        confidence,
        ...(calibrator ? { uncalibrated: { confidence: raw } } : {}),
        ...(loaded.fused ? { fusion: { weights: v['fusion-weights'], token_weights: fusionWeights } } : {}),
      });
    }
    return 0;
  },
});
