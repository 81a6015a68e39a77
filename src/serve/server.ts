/**
 * `attune serve`: an OpenAI-compatible HTTP server (fastify) over one base model and its adapters.
 *
 * Routes: GET /v1/models, POST /v1/completions, POST /v1/chat/completions (JSON, or SSE with
 * `stream: true`), GET /health. A request's `model` is the base id or `base:adapter`; all requests
 * go through one DecodeEngine (continuous batching, engine.ts). Errors are OpenAI's
 * `{error: {message, type, param, code}}`: 400 bad field, 404 unknown model or route, 413 body over
 * the limit, 429 full queue, 503 while shutting down. `close()` drains: new requests get 503,
 * in-flight ones (streams included) run to the end, then the listener closes.
 *
 * Instead of a model directory the server can be handed a model already built (`model`): a
 * weak-to-strong logit fusion (models/fusion.ts, built by the CLI from --strong / --weak-base /
 * --weak-tuned as generate does). It decodes like any CausalLM (each member with its own KV cache,
 * one fused logit row per sequence and step), so batching and seeded sampling work unchanged;
 * named LoRA adapters and calibrators apply to one model and are refused with it.
 */
import { randomBytes } from 'node:crypto';
import { basename, resolve } from 'node:path';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { AttuneError, UsageError } from '../errors.ts';
import type { Tokenizer } from '../io/index.ts';
import { type CausalLM, loadModel, MemberEnsembleLM, type WeightStorage } from '../models/index.ts';
import { loadCalibratorFile } from '../uq/index.ts';
import {
  DecodeEngine,
  DrainingError,
  QueueFullError,
  type SequenceDelta,
  type SequenceHandle,
} from './engine.ts';
import { type AdapterSet, installAdapters } from './multi-lora.ts';
import {
  ApiError,
  type ChatRequest,
  type CompletionRequest,
  type GenerationSettings,
  parseChatRequest,
  parseCompletionRequest,
} from './openai-requests.ts';
import {
  chatBody,
  chatChunk,
  completionBody,
  completionChunk,
  type FinishedChoice,
  finishReason,
  listedTokens,
  usageChunk,
  usageOf,
} from './openai-responses.ts';
import { attuneField, calibratedTargets, type UncertaintySettings } from './uncertainty.ts';

/** A model built by the caller to serve in place of loading a directory (e.g. a fusion). */
export interface PrebuiltModel {
  model: CausalLM;
  tokenizer: Tokenizer | null;
  eosTokenIds: readonly number[];
  /** The directory it is named after (a fusion: the strong model's). */
  dir: string;
}

/** Everything `attune serve` is configured with. */
export interface ServeOptions {
  /** The model directory to load (one of modelDir and model). */
  modelDir?: string;
  /** A model already built (a fusion); replaces modelDir, and takes no adapters or calibrator. */
  model?: PrebuiltModel;
  /** Adapters by name (served as `<base>:<name>`). */
  adapters?: readonly { name: string; dir: string }[];
  host?: string;
  /** 0 = any free port. */
  port?: number;
  /** The base's model id (default: the model directory's name). */
  modelName?: string;
  dtype?: WeightStorage;
  calibratorPath?: string | null;
  abstainThreshold?: number | null;
  maxBatch?: number;
  maxQueue?: number;
  /** Largest max_tokens a request may ask (default 256). */
  maxTokens?: number;
  /** Request bodies over this many bytes get 413 (default 1 MiB). */
  maxBodyBytes?: number;
  /** Jinja chat template source replacing (or supplying) the tokenizer's. */
  chatTemplate?: string;
}

/** A running server. */
export interface ServeHandle {
  /** `http://host:port`. */
  url: string;
  port: number;
  /** Served model ids: the base, then `base:adapter` for each adapter. */
  modelIds: string[];
  engine: DecodeEngine;
  /** Drain in-flight requests (new ones get 503), then stop listening. */
  close(): Promise<void>;
}

/** Served model state shared by the routes. */
interface ServeContext {
  model: CausalLM;
  eosTokenIds: readonly number[];
  /** Prompt + max_tokens limit: the model's positions (a fusion: its members' smallest). */
  maxPositions: number;
  tokenizer: Tokenizer;
  adapters: AdapterSet;
  baseId: string;
  engine: DecodeEngine;
  uncertainty: UncertaintySettings;
  maxTokens: number;
  chatTemplate: string | undefined;
  created: number;
}

const DEFAULTS = { maxBatch: 16, maxQueue: 64, maxTokens: 256, maxBodyBytes: 1 << 20 };

/** Validate the options, load the model and adapters, and start listening. */
export async function startServer(options: ServeOptions): Promise<ServeHandle> {
  const adapters = options.adapters ?? [];
  const names = new Set<string>();
  for (const a of adapters) {
    if (!/^[A-Za-z0-9._-]+$/.test(a.name))
      throw new UsageError(`serve: adapter name '${a.name}' must be letters, digits, '.', '_' or '-'`);
    if (names.has(a.name)) throw new UsageError(`serve: adapter name '${a.name}' is given twice`);
    names.add(a.name);
  }
  if ((options.modelDir === undefined) === (options.model === undefined))
    throw new UsageError('serve: give exactly one of a model directory and a built model (a fusion)');
  if (options.model && adapters.length > 0)
    throw new UsageError(
      'serve: --adapter serves LoRA adapters over one base; it does not apply to a fusion (give each member its adapter as DIR:ADAPTER)',
    );
  if (options.model && options.calibratorPath)
    throw new UsageError(
      'serve: --calibrator is fitted on one model; it does not apply to a fusion (--strong)',
    );
  const maxBatch = options.maxBatch ?? DEFAULTS.maxBatch;
  const maxQueue = options.maxQueue ?? DEFAULTS.maxQueue;
  const maxTokens = options.maxTokens ?? DEFAULTS.maxTokens;
  const threshold = options.abstainThreshold ?? null;
  if (threshold !== null && !(threshold >= 0 && threshold <= 1))
    throw new UsageError(`serve: --abstain-threshold must be in [0, 1], found ${threshold}`);
  const calibrator = options.calibratorPath ? loadCalibratorFile(options.calibratorPath) : null;
  const calibrated =
    calibrator && options.modelDir !== undefined
      ? calibratedTargets(
          calibrator,
          options.modelDir,
          adapters.map((a) => a.dir),
        )
      : new Set<number>();
  const loaded = options.model ?? loadModel(options.modelDir!, { dtype: options.dtype ?? 'f32' });
  const tokenizer = loaded.tokenizer;
  if (!tokenizer) throw new UsageError(`serve: ${loaded.dir} has no tokenizer.json`);
  const adapterSet = installAdapters(loaded.model, adapters);
  loaded.model.eval();
  const engine = new DecodeEngine({
    model: loaded.model,
    tokenizer,
    router: adapterSet.router,
    eosTokenIds: loaded.eosTokenIds,
    maxBatch,
    maxQueue,
  });
  const ctx: ServeContext = {
    model: loaded.model,
    eosTokenIds: loaded.eosTokenIds,
    maxPositions: positionLimit(loaded.model),
    tokenizer,
    adapters: adapterSet,
    baseId: options.modelName ?? basename(resolve(loaded.dir)),
    engine,
    uncertainty: { calibrator, calibrated, abstainThreshold: threshold },
    maxTokens,
    chatTemplate: options.chatTemplate,
    created: Math.floor(Date.now() / 1000),
  };
  const app = buildApp(ctx, options.maxBodyBytes ?? DEFAULTS.maxBodyBytes);
  await app.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 8000 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : (options.port ?? 8000);
  const host = options.host ?? '127.0.0.1';
  let closing: Promise<void> | null = null;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    modelIds: modelIds(ctx),
    engine,
    close: () => {
      closing ??= (async () => {
        const drained = engine.drain();
        await app.close();
        await drained;
      })();
      return closing;
    },
  };
}

/** How many positions `model` can attend over: a fusion's members must all fit. */
function positionLimit(model: CausalLM): number {
  if (model instanceof MemberEnsembleLM) return Math.min(...model.members.map((m) => positionLimit(m)));
  return model.config.maxPositionEmbeddings;
}

function modelIds(ctx: ServeContext): string[] {
  return [ctx.baseId, ...ctx.adapters.adapters.map((a) => `${ctx.baseId}:${a.name}`)];
}

/** The adapter index a request's `model` names (-1 = base); 404 when it names nothing served. */
function adapterOf(ctx: ServeContext, model: string): number {
  if (model === ctx.baseId) return -1;
  const prefix = `${ctx.baseId}:`;
  const index = model.startsWith(prefix) ? ctx.adapters.indexOf(model.slice(prefix.length)) : -1;
  if (index < 0)
    throw new ApiError(
      404,
      `The model '${model}' does not exist; served: ${modelIds(ctx).join(', ')}`,
      'invalid_request_error',
      'model',
      'model_not_found',
    );
  return index;
}

function buildApp(ctx: ServeContext, bodyLimit: number): FastifyInstance {
  const app = Fastify({ bodyLimit, logger: false, return503OnClosing: true, forceCloseConnections: 'idle' });
  app.setErrorHandler((error, _request, reply) => {
    const api = toApiError(error);
    void reply.status(api.status).send(api.body());
  });
  app.setNotFoundHandler((request, reply) => {
    const api = new ApiError(
      404,
      `no route ${request.method} ${request.url}`,
      'invalid_request_error',
      null,
      'not_found',
    );
    void reply.status(404).send(api.body());
  });
  app.get('/health', async () => ({
    status: ctx.engine.isDraining ? 'draining' : 'ok',
    ...ctx.engine.stats(),
  }));
  app.get('/v1/models', async () => ({
    object: 'list',
    data: modelIds(ctx).map((id) => ({ id, object: 'model', created: ctx.created, owned_by: 'attune' })),
  }));
  app.post('/v1/completions', async (request, reply) => {
    const req = parseCompletionRequest(request.body, { maxTokens: ctx.maxTokens });
    const adapter = adapterOf(ctx, req.model);
    const prompts = req.prompts.map((p, i) => checkContext(ctx, ctx.tokenizer.encode(p), req, `prompt.${i}`));
    return runRequest(ctx, reply, 'completion', req, adapter, prompts);
  });
  app.post('/v1/chat/completions', async (request, reply) => {
    const req = parseChatRequest(request.body, { maxTokens: ctx.maxTokens });
    const adapter = adapterOf(ctx, req.model);
    return runRequest(ctx, reply, 'chat', req, adapter, [
      checkContext(ctx, chatPrompt(ctx, req), req, 'messages'),
    ]);
  });
  return app;
}

/** The chat request's prompt ids (the chat template with a generation prompt). */
function chatPrompt(ctx: ServeContext, req: ChatRequest): number[] {
  if (ctx.chatTemplate === undefined && ctx.tokenizer.chatTemplate === null)
    throw new ApiError(
      400,
      `the model '${ctx.baseId}' has no chat template; use /v1/completions, or start serve with --chat-template <file>`,
      'invalid_request_error',
      'messages',
      'no_chat_template',
    );
  try {
    return ctx.tokenizer.encodeChat(req.messages, {
      addGenerationPrompt: true,
      chatTemplate: ctx.chatTemplate,
    });
  } catch (error) {
    throw new ApiError(
      400,
      `messages: the chat template failed: ${(error as Error).message}`,
      'invalid_request_error',
      'messages',
      'invalid_value',
    );
  }
}

/** `ids` when prompt + max_tokens fit the model's positions; else 400 context_length_exceeded. */
function checkContext(ctx: ServeContext, ids: number[], req: GenerationSettings, param: string): number[] {
  const limit = ctx.maxPositions;
  if (ids.length === 0)
    throw new ApiError(
      400,
      `${param}: encodes to no tokens`,
      'invalid_request_error',
      param,
      'invalid_value',
    );
  if (ids.length + req.maxTokens > limit)
    throw new ApiError(
      400,
      `This model's maximum context length is ${limit} tokens; the prompt has ${ids.length} and max_tokens asks ${req.maxTokens}`,
      'invalid_request_error',
      param,
      'context_length_exceeded',
    );
  return ids;
}

/** Queue every prompt (all or none), then answer in JSON or stream SSE. */
async function runRequest(
  ctx: ServeContext,
  reply: FastifyReply,
  kind: 'completion' | 'chat',
  req: CompletionRequest | ChatRequest,
  adapter: number,
  prompts: number[][],
): Promise<unknown> {
  const id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomBytes(12).toString('hex')}`;
  const created = Math.floor(Date.now() / 1000);
  const stream = req.stream ? new SseWriter(reply) : null;
  const offsets = prompts.map(() => 0);
  const handles: SequenceHandle[] = [];
  try {
    prompts.forEach((promptIds, index) => {
      const onDelta = stream
        ? (delta: SequenceDelta) => {
            const tokens =
              req.logprobs !== null ? delta.tokens.filter((t) => !ctx.eosTokenIds.includes(t.id)) : null;
            if (delta.text === '' && (tokens === null || tokens.length === 0)) return;
            if (kind === 'chat')
              stream.send(chatChunk(id, created, req.model, { content: delta.text }, tokens, null));
            else {
              const lp = tokens ? { tokens, offset: offsets[index]! } : null;
              for (const t of tokens ?? []) offsets[index]! += t.text.length;
              stream.send(completionChunk(id, created, req.model, index, delta.text, lp, null));
            }
          }
        : undefined;
      handles.push(
        ctx.engine.submit({
          promptIds,
          adapter,
          maxTokens: req.maxTokens,
          temperature: req.temperature,
          topP: req.topP,
          seed: req.seed,
          stop: req.stop,
          topLogprobs: req.logprobs ?? 0,
          onDelta,
        }),
      );
    });
  } catch (error) {
    for (const h of handles) h.cancel();
    throw error;
  }
  const finishChoice = (index: number) =>
    handles[index]!.result.then((result): FinishedChoice => {
      const attune = attuneField(
        result,
        { promptIds: prompts[index]!, adapter, modelId: req.model },
        ctx.uncertainty,
        ctx.model,
        ctx.adapters.router,
      );
      return { result, attune, logprobTokens: req.logprobs !== null ? listedTokens(result) : null };
    });
  if (!stream) {
    // a client that hangs up cancels its sequences (their slots go to others)
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) for (const h of handles) h.cancel();
    });
    const choices = await Promise.all(handles.map((_, i) => finishChoice(i)));
    return kind === 'chat'
      ? chatBody(id, created, req.model, choices[0]!)
      : completionBody(id, created, req.model, choices);
  }
  stream.open(() => {
    for (const h of handles) h.cancel();
  });
  if (kind === 'chat')
    stream.send(chatChunk(id, created, req.model, { role: 'assistant', content: '' }, null, null));
  try {
    const choices = await Promise.all(
      handles.map((_, index) =>
        finishChoice(index).then((choice) => {
          const finish = { reason: finishReason(choice.result.stopReason), attune: choice.attune };
          stream.send(
            kind === 'chat'
              ? chatChunk(id, created, req.model, {}, null, finish)
              : completionChunk(id, created, req.model, index, '', null, finish),
          );
          return choice;
        }),
      ),
    );
    if (req.includeUsage)
      stream.send(
        usageChunk(
          id,
          created,
          req.model,
          kind === 'chat' ? 'chat.completion.chunk' : 'text_completion',
          usageOf(choices.map((c) => c.result)),
        ),
      );
  } catch (error) {
    // headers are sent: the error goes in the stream, in the error shape
    stream.send(toApiError(error).body());
  }
  stream.end();
  return reply;
}

/** Server-sent events on a hijacked reply: `data: <json>\n\n` ..., then `data: [DONE]`. */
class SseWriter {
  private closed = false;

  constructor(private readonly reply: FastifyReply) {}

  /** Send the headers; `onClientGone` runs if the client disconnects before the end. */
  open(onClientGone: () => void): void {
    this.reply.hijack();
    const raw = this.reply.raw;
    raw.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    raw.on('close', () => {
      if (!this.closed) {
        this.closed = true;
        onClientGone();
      }
    });
  }

  send(value: unknown): void {
    if (!this.closed) this.reply.raw.write(`data: ${JSON.stringify(value)}\n\n`);
  }

  end(): void {
    if (this.closed) return;
    this.closed = true;
    this.reply.raw.end('data: [DONE]\n\n');
  }
}

/** Any error as the ApiError it is answered with (500 for what is not the client's fault). */
function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof QueueFullError)
    return new ApiError(429, error.message, 'rate_limit_exceeded', null, 'queue_full');
  if (error instanceof DrainingError)
    return new ApiError(503, error.message, 'server_error', null, 'shutting_down');
  const e = error as { statusCode?: number; code?: string; message?: string };
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
    return new ApiError(
      413,
      `the request body is over this server's limit (${e.message})`,
      'invalid_request_error',
      null,
      'request_too_large',
    );
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500)
    return new ApiError(
      e.statusCode,
      e.message ?? 'bad request',
      'invalid_request_error',
      null,
      e.code ?? null,
    );
  const message = error instanceof AttuneError || error instanceof Error ? error.message : String(error);
  return new ApiError(500, `internal error: ${message}`, 'server_error', null, null);
}
