/** `attune inspect DIR`: what a model directory holds. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { openCheckpoint, readModelConfig, Tokenizer } from '../../io/index.ts';
import { checkModelDir, parseModelConfig } from '../../models/index.ts';
import { jsonOption } from '../args.ts';
import { defineCommand } from '../command.ts';

/** Summary of a model directory (also the --json object). */
export interface InspectReport {
  dir: string;
  architecture: string;
  model_type: string;
  parameters: number;
  dtypes: Record<string, number>;
  layers: number;
  hidden_size: number;
  heads: number;
  kv_heads: number;
  vocab_size: number;
  tied_embeddings: boolean;
  tokenizer: {
    present: boolean;
    vocab_size: number | null;
    bos: string | null;
    eos: string[];
    chat_template: boolean;
  };
}

/** Read config, checkpoint header and tokenizer of `dir` without loading the weights. */
export function inspectModelDir(dir: string): InspectReport {
  const raw = readModelConfig(dir);
  const config = parseModelConfig(raw, join(dir, 'config.json'));
  checkModelDir(dir);
  const reader = openCheckpoint(dir);
  let parameters = 0;
  const dtypes: Record<string, number> = {};
  try {
    for (const name of reader.names()) {
      const info = reader.info(name);
      const n = info.shape.reduce((p, d) => p * d, 1);
      parameters += n;
      dtypes[info.dtype] = (dtypes[info.dtype] ?? 0) + n;
    }
  } finally {
    reader.close();
  }
  const hasTokenizer = existsSync(join(dir, 'tokenizer.json'));
  const tok = hasTokenizer ? Tokenizer.fromDir(dir) : null;
  const architectures = raw.architectures;
  return {
    dir,
    architecture:
      Array.isArray(architectures) && typeof architectures[0] === 'string'
        ? architectures[0]
        : config.modelType,
    model_type: config.modelType,
    parameters,
    dtypes,
    layers: config.numLayers,
    hidden_size: config.hiddenSize,
    heads: config.numHeads,
    kv_heads: config.numKvHeads,
    vocab_size: config.vocabSize,
    tied_embeddings: config.tieWordEmbeddings,
    tokenizer: {
      present: hasTokenizer,
      vocab_size: tok?.vocabSize ?? null,
      bos: tok && tok.bosTokenId !== null ? (tok.idToToken(tok.bosTokenId) ?? null) : null,
      eos: tok ? tok.eosTokenIds.map((id) => tok.idToToken(id) ?? String(id)) : [],
      chat_template: tok?.chatTemplate !== null && tok?.chatTemplate !== undefined,
    },
  };
}

/** `attune inspect DIR [--json]`. */
export const inspectCommand = defineCommand({
  name: 'inspect',
  summary: 'Describe a model directory: architecture, parameters, dtypes, tokenizer',
  positionals: [{ name: 'dir', description: 'a Hub-format model directory' }],
  options: { json: jsonOption },
  examples: ['attune inspect ./SmolLM2-135M', 'attune inspect ./model --json'],
  async run(args, io) {
    const r = inspectModelDir(args.positionals[0]!);
    const dt = Object.entries(r.dtypes)
      .map(([k, n]) => `${k} ${n.toLocaleString('en-US')}`)
      .join(', ');
    io.line(`${r.dir}`);
    io.line(`  architecture   ${r.architecture} (model_type ${r.model_type})`);
    io.line(`  parameters     ${r.parameters.toLocaleString('en-US')} (${dt})`);
    io.line(
      `  shape          ${r.layers} layers, hidden ${r.hidden_size}, ${r.heads} heads / ${r.kv_heads} KV heads, vocab ${r.vocab_size}`,
    );
    io.line(`  embeddings     ${r.tied_embeddings ? 'tied to the LM head' : 'separate LM head'}`);
    io.line(
      r.tokenizer.present
        ? `  tokenizer      vocab ${r.tokenizer.vocab_size}, BOS ${r.tokenizer.bos ?? '-'}, EOS ${r.tokenizer.eos.join(' ') || '-'}, chat template ${r.tokenizer.chat_template ? 'yes' : 'no'}`
        : '  tokenizer      none (no tokenizer.json)',
    );
    if (args.values.json) io.json(r);
    return 0;
  },
});
