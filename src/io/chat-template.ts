/**
 * Chat templates: the Jinja template of a tokenizer, rendered with `@huggingface/jinja` (trim_blocks
 * and lstrip_blocks on, `raise_exception` and `strftime_now` defined, as transformers does) and the
 * variables transformers passes: `messages`, `add_generation_prompt`, `tools`, `documents`, and the
 * special tokens (`bos_token`, `eos_token`, `unk_token`, `pad_token`, ...).
 */
import { Template } from '@huggingface/jinja';
import { AttuneError, FormatError } from '../errors.ts';

/** One chat turn. Extra fields (`tool_calls`, `name`, ...) are passed to the template as they are. */
export interface ChatMessage {
  role: string;
  content: string | null | readonly unknown[];
  [field: string]: unknown;
}

/** Variables of a chat template rendering besides the messages and special tokens. */
export interface ChatTemplateOptions {
  /** Append the opening of an assistant turn (transformers' `add_generation_prompt`, default false). */
  addGenerationPrompt?: boolean;
  /** Tool definitions (`tools`; null when absent, as transformers passes). */
  tools?: readonly unknown[] | null;
  /** Documents for retrieval-augmented templates (`documents`; null when absent). */
  documents?: readonly unknown[] | null;
  /** Further template variables (transformers' extra keyword arguments). */
  variables?: Readonly<Record<string, unknown>>;
}

/** A chat template source with its origin (a file name, for errors), parsed on first use. */
export class ChatTemplate {
  private parsed: Template | null = null;

  constructor(
    readonly source: string,
    /** Where the template came from, e.g. `/models/x/tokenizer_config.json`. */
    readonly origin: string,
  ) {}

  /**
   * Render `messages` with `specialTokens` (e.g. `{bos_token: '<s>', eos_token: '</s>'}`) and the
   * options' variables. A template that does not parse is a FormatError naming its origin; an error
   * raised while rendering (e.g. the template's own `raise_exception`) is an AttuneError.
   */
  render(
    messages: readonly ChatMessage[],
    specialTokens: Readonly<Record<string, unknown>>,
    options: ChatTemplateOptions = {},
  ): string {
    const template = this.template();
    const variables: Record<string, unknown> = {
      ...specialTokens,
      ...options.variables,
      messages: messages.map((message) => ({ ...message })),
      add_generation_prompt: options.addGenerationPrompt ?? false,
      tools: options.tools ?? null,
      documents: options.documents ?? null,
    };
    try {
      return template.render(variables);
    } catch (error) {
      throw new AttuneError(`chat template of ${this.origin}: ${oneLine(error)}`);
    }
  }

  private template(): Template {
    if (this.parsed) return this.parsed;
    try {
      this.parsed = new Template(this.source);
    } catch (error) {
      throw new FormatError(this.origin, `chat template does not parse: ${oneLine(error)}`);
    }
    return this.parsed;
  }
}

function oneLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/\s*\n\s*/g, ' ').trim();
}

/**
 * The chat templates of a `tokenizer_config.json` `chat_template` value: a string (named
 * 'default'), or a list of `{name, template}` (transformers' named templates). FormatError naming
 * `file` for anything else.
 */
export function chatTemplatesOf(value: unknown, file: string): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (typeof value === 'string') return { default: value };
  if (Array.isArray(value)) {
    const templates: Record<string, string> = {};
    for (const item of value) {
      const name = (item as { name?: unknown })?.name;
      const template = (item as { template?: unknown })?.template;
      if (typeof name !== 'string' || typeof template !== 'string') {
        throw new FormatError(file, 'chat_template list entries must be {name: string, template: string}');
      }
      templates[name] = template;
    }
    return templates;
  }
  throw new FormatError(
    file,
    `chat_template must be a string or a list of {name, template}, found ${typeof value}`,
  );
}
