/** `attune serve`: an OpenAI-compatible HTTP server with Attune's uncertainty on every answer. */
import { existsSync } from 'node:fs';
import { UsageError } from '../../errors.ts';
import { startServer } from '../../serve/index.ts';
import { defineCommand } from '../command.ts';
import { fusionOptions, loadRunnableFromFlags, readChatTemplate } from '../model-options.ts';

const options = {
  model: {
    type: 'path',
    description:
      'Hub-format base model directory (config.json, safetensors, tokenizer); or fuse with --strong',
    valueName: '<dir>',
  },
  ...fusionOptions,
  adapter: {
    type: 'string',
    multiple: true,
    description: 'a LoRA adapter to serve as "<base>:NAME" (repeatable; loaded once over the one base)',
    valueName: '<NAME=DIR>',
  },
  name: {
    type: 'string',
    description: "the base's model id (default: the model directory's name)",
    valueName: '<id>',
  },
  host: { type: 'string', description: 'address to listen on', default: '127.0.0.1', valueName: '<addr>' },
  port: { type: 'integer', min: 0, max: 65535, description: 'port (0 = any free port)', default: 8000 },
  dtype: {
    type: 'choice',
    choices: ['f32', 'bf16', 'int8', 'nf4'],
    description: 'base weight storage (int8 / nf4: attention and MLP matrices block-quantised)',
    default: 'f32',
  },
  'chat-template': {
    type: 'path',
    description:
      'Jinja chat template for /v1/chat/completions, for models that ship none (or to replace theirs)',
    valueName: '<file>',
  },
  calibrator: {
    type: 'path',
    description:
      'calibrator JSON (attune calibrate fit): answers of the model or adapter it was fitted on carry the calibrated confidence',
    valueName: '<file>',
  },
  'abstain-threshold': {
    type: 'number',
    min: 0,
    max: 1,
    description: 'mark answers whose confidence (calibrated when possible) is below this "abstain": true',
    valueName: '<t>',
  },
  'max-batch': { type: 'integer', min: 1, description: 'sequences decoded together at most', default: 16 },
  'max-queue': {
    type: 'integer',
    min: 0,
    description: 'sequences waiting for a batch slot at most (beyond: HTTP 429)',
    default: 64,
  },
  'max-tokens': {
    type: 'integer',
    min: 1,
    description: 'largest max_tokens a request may ask',
    default: 256,
  },
  'max-body-bytes': {
    type: 'integer',
    min: 1024,
    description: 'request bodies over this size get HTTP 413',
    default: 1 << 20,
  },
} as const;

/** Parse `NAME=DIR` adapter flags (the directory must exist). */
export function parseAdapterFlags(values: readonly string[]): { name: string; dir: string }[] {
  return values.map((value) => {
    const at = value.indexOf('=');
    if (at <= 0 || at === value.length - 1)
      throw new UsageError(
        `serve: --adapter expects NAME=DIR (e.g. --adapter qa=runs/qa/adapter), found '${value}'`,
      );
    const dir = value.slice(at + 1);
    if (!existsSync(dir)) throw new UsageError(`serve: --adapter ${value}: no directory ${dir}`);
    return { name: value.slice(0, at), dir };
  });
}

/** `attune serve --model DIR [--adapter NAME=DIR ...] [--port N] ...`. */
export const serveCommand = defineCommand({
  name: 'serve',
  summary: 'Serve a model and its LoRA adapters over an OpenAI-compatible HTTP API',
  description: `Listens on --host:--port (127.0.0.1:8000) with /v1/models, /v1/completions and
/v1/chat/completions (JSON, or server-sent events with "stream": true), and /health. A request's
"model" is the base id or "<base>:<adapter>"; all adapters share the one base in memory and
concurrent requests are decoded together in one batch (a sequence's answer is the same alone or
batched). Every choice carries an extra "attune" field: the uncertainty scores of the answer, its
confidence (calibrated with --calibrator) and "abstain" at --abstain-threshold. Errors are OpenAI's
{"error": {message, type, param, code}}: 400, 404, 413 (body too large), 429 (queue full), 503
(shutting down). SIGTERM or SIGINT drains in-flight requests, then exits 0.
Weak-to-strong fusion: instead of --model, --strong DIR[:ADAPTER] with --weak-tuned DIR[:ADAPTER]
(repeatable) and --weak-base DIR[:ADAPTER] serves the fused model as generate decodes it: every
token from z_strong + sum_i w_i (z_tuned_i - z_base_i), the weights per step by the dynamic KL rule
(--fusion-weights dynamic) or fixed (proxy tuning); vocabularies must match. See docs/serve.md.`,
  options,
  examples: [
    'attune serve --model world-bases/small --chat-template chat.jinja --port 8000',
    'attune serve --model ./base --adapter qa=runs/qa/adapter --adapter chat=runs/chat/adapter --calibrator cal.json --abstain-threshold 0.5',
    'attune serve --strong world-bases/large --weak-base world-bases/small --weak-tuned world-bases/small:runs/qa/adapter --port 8000',
  ],
  async run(args, io) {
    const v = args.values;
    const fusing = v.strong !== undefined || v['weak-base'].length > 0 || v['weak-tuned'].length > 0;
    if (!fusing && v.model === undefined)
      throw new UsageError(
        'serve: --model <dir> is required (or --strong, --weak-base and --weak-tuned to serve a fusion)',
      );
    if (fusing && v.adapter.length > 0)
      throw new UsageError(
        'serve: --adapter serves LoRA adapters over one base; with a fusion give each member its adapter as DIR:ADAPTER',
      );
    if (fusing && v.calibrator !== undefined)
      throw new UsageError(
        'serve: --calibrator is fitted on one model; it does not apply to a fusion (--strong)',
      );
    const adapters = parseAdapterFlags(v.adapter);
    const fused = fusing ? loadRunnableFromFlags({ ...v, adapter: undefined }, 'serve') : null;
    const handle = await startServer({
      ...(fused
        ? {
            model: {
              model: fused.model,
              tokenizer: fused.tokenizer,
              eosTokenIds: fused.eosTokenIds,
              dir: fused.dir,
            },
          }
        : { modelDir: v.model! }),
      adapters,
      host: v.host,
      port: v.port,
      ...(v.name !== undefined ? { modelName: v.name } : {}),
      dtype: v.dtype,
      calibratorPath: v.calibrator ?? null,
      abstainThreshold: v['abstain-threshold'] ?? null,
      maxBatch: v['max-batch'],
      maxQueue: v['max-queue'],
      maxTokens: v['max-tokens'],
      maxBodyBytes: v['max-body-bytes'],
      ...(v['chat-template'] !== undefined ? { chatTemplate: readChatTemplate(v['chat-template']) } : {}),
    });
    io.note(`serve: listening on ${handle.url} (models: ${handle.modelIds.join(', ')})`);
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        io.note(`serve: ${signal}: draining in-flight requests ...`);
        void handle.close().then(resolve);
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
    io.note('serve: stopped');
    return 0;
  },
});
