/**
 * OpenAI request bodies: validation of `/v1/completions` and `/v1/chat/completions` into the
 * settings the decode loop needs, and OpenAI's error shape. A bad field is an `ApiError` (HTTP 4xx)
 * naming the field in `param`, as OpenAI does; fields Attune does not implement with a non-default
 * value (n > 1, penalties, logit_bias, echo, suffix, tools) are refused rather than ignored.
 */
import { z } from 'zod';

/** An error answered as `{error: {message, type, param, code}}` with an HTTP status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string = 'invalid_request_error',
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }

  /** The JSON body OpenAI clients parse. */
  body(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** Limits a server applies to every request. */
export interface RequestLimits {
  /** Largest max_tokens accepted (and the default of chat completions). */
  maxTokens: number;
}

const stopField = z.union([z.string(), z.array(z.string()).max(4)]).nullish();

const common = {
  model: z.string().min(1),
  max_tokens: z.number().int().min(1).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  n: z.literal(1).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  stop: stopField,
  seed: z
    .number()
    .int()
    .min(0)
    .max(2 ** 32 - 1)
    .nullish(),
  presence_penalty: z.literal(0).nullish(),
  frequency_penalty: z.literal(0).nullish(),
  logit_bias: z
    .record(z.string(), z.number())
    .refine((v) => Object.keys(v).length === 0, 'logit_bias is not supported')
    .nullish(),
  user: z.string().nullish(),
};

const completionSchema = z.object({
  ...common,
  prompt: z.union([z.string(), z.array(z.string()).min(1).max(64)]),
  logprobs: z.number().int().min(0).max(5).nullish(),
  echo: z.literal(false).nullish(),
  suffix: z.null().optional(),
  best_of: z.literal(1).nullish(),
});

const contentPart = z.object({ type: z.literal('text'), text: z.string() });
const messageSchema = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant']),
  content: z.union([z.string(), z.array(contentPart)]),
  name: z.string().optional(),
});

const chatSchema = z.object({
  ...common,
  messages: z.array(messageSchema).min(1),
  max_completion_tokens: z.number().int().min(1).nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: z.number().int().min(0).max(20).nullish(),
  tools: z.array(z.unknown()).max(0, 'tools are not supported').nullish(),
  response_format: z.object({ type: z.literal('text') }).nullish(),
});

/** Sampling and output settings shared by both endpoints. */
export interface GenerationSettings {
  model: string;
  maxTokens: number;
  temperature: number;
  topP: number;
  seed: number;
  stop: string[];
  stream: boolean;
  includeUsage: boolean;
  /** Alternatives per token to report; null = no logprobs asked. */
  logprobs: number | null;
}

/** A validated /v1/completions request. */
export interface CompletionRequest extends GenerationSettings {
  prompts: string[];
}

/** A validated /v1/chat/completions request. */
export interface ChatRequest extends GenerationSettings {
  messages: { role: string; content: string }[];
}

/** A zod failure as a 400 naming the first bad field. */
function invalid(error: z.ZodError): ApiError {
  const issue = error.issues[0]!;
  const param = issue.path.map(String).join('.') || null;
  const unrecognized = issue.code === 'invalid_union' ? 'has an invalid value' : issue.message;
  return new ApiError(
    400,
    `${param ?? 'body'}: ${unrecognized}`,
    'invalid_request_error',
    param,
    'invalid_value',
  );
}

function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw new ApiError(
      400,
      'the request body must be a JSON object',
      'invalid_request_error',
      null,
      'invalid_json',
    );
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw invalid(parsed.error);
  return parsed.data;
}

function settings(
  body: z.infer<typeof completionSchema> | z.infer<typeof chatSchema>,
  maxTokens: number | null | undefined,
  defaultMaxTokens: number,
  logprobs: number | null,
  limits: RequestLimits,
): GenerationSettings {
  const max = maxTokens ?? defaultMaxTokens;
  if (max > limits.maxTokens)
    throw new ApiError(
      400,
      `max_tokens is ${max}, above this server's limit of ${limits.maxTokens} (--max-tokens)`,
      'invalid_request_error',
      'max_tokens',
      'invalid_value',
    );
  const stop = body.stop == null ? [] : typeof body.stop === 'string' ? [body.stop] : body.stop;
  if (stop.some((s) => s.length === 0))
    throw new ApiError(
      400,
      'stop: a stop string must not be empty',
      'invalid_request_error',
      'stop',
      'invalid_value',
    );
  return {
    model: body.model,
    maxTokens: max,
    temperature: body.temperature ?? 1,
    topP: body.top_p ?? 1,
    seed: body.seed ?? 0,
    stop,
    stream: body.stream ?? false,
    includeUsage: body.stream_options?.include_usage ?? false,
    logprobs,
  };
}

/** Validate a /v1/completions body (OpenAI's defaults: max_tokens 16, temperature 1). */
export function parseCompletionRequest(body: unknown, limits: RequestLimits): CompletionRequest {
  const b = parseBody(completionSchema, body);
  const prompts = typeof b.prompt === 'string' ? [b.prompt] : b.prompt;
  if (prompts.some((p) => p.length === 0))
    throw new ApiError(400, 'prompt: must not be empty', 'invalid_request_error', 'prompt', 'invalid_value');
  return {
    ...settings(b, b.max_tokens, Math.min(16, limits.maxTokens), b.logprobs ?? null, limits),
    prompts,
  };
}

/** Validate a /v1/chat/completions body (max_tokens defaults to the server's limit). */
export function parseChatRequest(body: unknown, limits: RequestLimits): ChatRequest {
  const b = parseBody(chatSchema, body);
  if (b.top_logprobs != null && !b.logprobs)
    throw new ApiError(
      400,
      'top_logprobs: requires logprobs to be true',
      'invalid_request_error',
      'top_logprobs',
      'invalid_value',
    );
  const messages = b.messages.map((m) => ({
    role: m.role === 'developer' ? 'system' : m.role,
    content: typeof m.content === 'string' ? m.content : m.content.map((p) => p.text).join(''),
  }));
  const logprobs = b.logprobs ? (b.top_logprobs ?? 0) : null;
  return {
    ...settings(b, b.max_completion_tokens ?? b.max_tokens, limits.maxTokens, logprobs, limits),
    messages,
  };
}
