/**
 * `attune export --model DIR [--adapter DIR] --format safetensors|peft|gguf --out PATH`: one export
 * scheme. safetensors: a plain Hub model dir (the adapter folded in); peft: the adapter dir alone;
 * gguf: one llama.cpp file, the model (with the adapter merged when --merge) or, given --adapter
 * without --merge, the LoRA adapter alone. `--merge` alone is `--format safetensors` with the adapter merged.
 * onnx: a transformers.js / onnxruntime folder (onnx/model.onnx with the KV-cache interface beside
 * config and tokenizer files), the adapter merged.
 * `--format peft --to-plain-lora`: a LoRA adapter whose init rewrote the base (PiSSA, OLoRA, CorDA)
 * converted, as PEFT does, into a plain rank-2r LoRA that applies to the original --model.
 */
import { existsSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { UsageError } from '../../errors.ts';
import { exportLoraGguf, exportModelGguf, GGUF_DTYPES, type GgufExportSummary } from '../../io/index.ts';
import { type CausalLM, exportOnnx, type LoadedModel, loadModel, saveModel } from '../../models/index.ts';
import {
  type Adapter,
  hasLoraPatterns,
  initLoraWeightsJson,
  isMutatingInit,
  LoraAdapter,
  loadAdapter,
  savePlainLora,
} from '../../peft/index.ts';
import { jsonOption } from '../args.ts';
import { defineCommand } from '../command.ts';
import { attuneVersion } from '../project.ts';

/** The formats `--format` accepts. */
const SUPPORTED_FORMATS = ['safetensors', 'peft', 'gguf', 'onnx'] as const;

const options = {
  model: { type: 'path', required: true, description: 'base model directory', valueName: '<dir>' },
  adapter: { type: 'path', description: 'adapter directory (PEFT layout)', valueName: '<dir>' },
  format: {
    type: 'choice',
    choices: SUPPORTED_FORMATS,
    description:
      'safetensors (model dir), peft (adapter dir), gguf (one llama.cpp file), onnx (transformers.js folder)',
  },
  merge: {
    type: 'boolean',
    description: 'fold the adapter into the base weights (alone: --format safetensors)',
  },
  'to-plain-lora': {
    type: 'boolean',
    description:
      'with --format peft: convert a PiSSA / OLoRA / CorDA adapter to a plain LoRA on the original --model (PEFT)',
  },
  dtype: {
    type: 'choice',
    choices: GGUF_DTYPES,
    description: 'gguf element type of the matrices (norms stay f32; default f32)',
  },
  out: {
    type: 'path',
    required: true,
    description: 'output: a file for gguf, a directory otherwise (must not exist unless --overwrite)',
    valueName: '<path>',
  },
  overwrite: { type: 'boolean', description: 'replace an existing --out' },
  json: jsonOption,
} as const;

/** The model's tensors under Hub names, and its config.json with the parsed tie flag made explicit. */
function hubTensors(model: CausalLM) {
  return {
    tensors: new Map(model.namedParameters()),
    config: { ...model.config.raw, tie_word_embeddings: model.config.tieWordEmbeddings },
  };
}

function exportGguf(
  loaded: LoadedModel,
  adapter: Adapter | null,
  v: { model: string; adapter?: string; merge: boolean; out: string; dtype?: (typeof GGUF_DTYPES)[number] },
): GgufExportSummary {
  if (adapter && !v.merge) {
    if (!(adapter instanceof LoraAdapter))
      throw new UsageError(
        `export: a GGUF adapter file holds LoRA only; ${v.adapter} is a '${adapter.method}' adapter (pass --merge to fold it into a GGUF model)`,
      );
    if (hasLoraPatterns(adapter.config))
      throw new UsageError(
        `export: a GGUF LoRA file holds one r and lora_alpha; ${v.adapter} sets rank_pattern / alpha_pattern (pass --merge to fold it into a GGUF model)`,
      );
    if (adapter.embeddingLayers().length > 0 || adapter.modulesToSave)
      throw new UsageError(
        `export: a GGUF LoRA file holds lora_a / lora_b of linear layers; ${v.adapter} ${adapter.modulesToSave ? 'has modules_to_save' : 'adapts an embedding table'} (pass --merge to fold it into a GGUF model)`,
      );
    const baseShapes = new Map<string, readonly number[]>();
    for (const [name, p] of loaded.model.namedParameters()) baseShapes.set(name, p.shape);
    const { config } = hubTensors(loaded.model);
    return exportLoraGguf(v.out, {
      state: adapter.state(),
      r: adapter.config.r,
      loraAlpha: adapter.config.loraAlpha,
      useRslora: adapter.config.useRslora,
      config,
      baseShapes,
      name: basename(resolve(v.adapter!)),
      dtype: v.dtype,
    });
  }
  const model = adapter ? (adapter.mergeAndUnload() as CausalLM) : loaded.model;
  const { tensors, config } = hubTensors(model);
  return exportModelGguf(v.out, tensors, config, {
    dtype: v.dtype,
    tokenizerDir: v.model,
    name: basename(resolve(v.model)),
    configPath: join(v.model, 'config.json'),
  });
}

/**
 * The LoRA adapter `--to-plain-lora` converts, or a UsageError saying why `adapter` needs no
 * conversion or cannot have one (checked before anything is written).
 */
function convertibleLora(adapter: Adapter, dir: string): LoraAdapter {
  if (!(adapter instanceof LoraAdapter))
    throw new UsageError(
      `export: --to-plain-lora converts a LoRA adapter with a base-rewriting init (pissa, olora, corda); ${dir} is a '${adapter.method}' adapter`,
    );
  const c = adapter.config;
  const init = JSON.stringify(initLoraWeightsJson(c.init));
  if (c.kasa)
    throw new UsageError(
      `export: --to-plain-lora is not defined for the KaSA adapter ${dir} (its update applies to the truncated base); use --merge`,
    );
  if (!isMutatingInit(c.init))
    throw new UsageError(
      `export: ${dir} needs no conversion: its init (init_lora_weights ${init}${c.useDora ? ', DoRA' : ''}) leaves the base as it is, so it already applies to the original model; drop --to-plain-lora`,
    );
  if (c.useDora)
    throw new UsageError(
      `export: --to-plain-lora cannot convert the DoRA adapter ${dir} (init_lora_weights ${init}): PEFT converts lora_A / lora_B only and the magnitude does not carry over; use --merge`,
    );
  return adapter;
}

/** `attune export ...`. */
export const exportCommand = defineCommand({
  name: 'export',
  summary: 'Export a model or adapter: Hub safetensors dir, PEFT adapter dir or llama.cpp GGUF',
  description: `Loads --model in f32 (and --adapter). --format safetensors writes a directory transformers
loads as a plain model, the adapter folded in (W + scaling * B A); --merge alone means this.
--format peft writes the adapter directory alone. --format gguf writes one file llama.cpp runs
(\`llama-cli -m out.gguf\`): the model with its tokenizer and chat template (the adapter merged with
--merge), or, given --adapter without --merge, the LoRA adapter alone (\`--lora out.gguf\`).
--format onnx writes a folder transformers.js and onnxruntime load: onnx/model.onnx, a decoder with
input_ids, attention_mask, position_ids and past_key_values.N.key/value in, logits (every position)
and present.N.key/value out, beside config.json and the tokenizer files (the adapter merged;
Llama-family and GPT-2 models). --dtype picks the GGUF matrices' type (f32, f16, bf16, q8_0). --format peft --to-plain-lora
converts an adapter whose init rewrote the base (init_lora_weights pissa, pissa_niter_N, olora,
corda) into a plain LoRA against the original --model, as PEFT's
save_pretrained(path_initial_model_for_weight_conversion=...) does: lora_A = [A; A0],
lora_B = [B, -B0], r and lora_alpha doubled, init_lora_weights true. Formats: ${SUPPORTED_FORMATS.join(', ')}.`,
  options,
  examples: [
    'attune export --model ./base --adapter runs/quickstart/adapter --merge --out ./merged',
    'attune export --model ./base --format gguf --dtype q8_0 --out model.gguf',
    'attune export --model ./base --adapter runs/quickstart/adapter --format gguf --out adapter.gguf',
    'attune export --model ./base --adapter runs/pissa/adapter --format peft --to-plain-lora --out ./plain-lora',
    'attune export --model ./base --adapter runs/quickstart/adapter --format onnx --out ./web-model',
  ],
  async run(args, io) {
    const v = args.values;
    const format = v.format ?? (v.merge ? 'safetensors' : undefined);
    if (format === undefined)
      throw new UsageError(`export: pass --format (${SUPPORTED_FORMATS.join(', ')}) or --merge`);
    if (v.merge && !v.adapter)
      throw new UsageError('export: --merge needs --adapter (the adapter to fold in)');
    if (format === 'peft' && (!v.adapter || v.merge))
      throw new UsageError('export: --format peft writes an adapter: pass --adapter, without --merge');
    if (v['to-plain-lora'] && format !== 'peft')
      throw new UsageError(
        `export: --to-plain-lora applies to --format peft only (got --format ${format}${v.merge && !v.format ? ' via --merge' : ''})`,
      );
    if (v.dtype !== undefined && format !== 'gguf')
      throw new UsageError(`export: --dtype applies to --format gguf only (got --format ${format})`);
    if (existsSync(v.out) && !v.overwrite)
      throw new UsageError(`export: ${v.out} exists (pass --overwrite to replace it)`);
    if (format === 'gguf') {
      if (existsSync(v.out) && statSync(v.out).isDirectory())
        throw new UsageError(`export: --out ${v.out} is a directory; --format gguf writes one file`);
      if (!existsSync(dirname(v.out)))
        throw new UsageError(`export: the folder of --out ${v.out} does not exist`);
    }
    const loaded = loadModel(v.model);
    const adapter = v.adapter ? loadAdapter(loaded.model, v.adapter) : null;
    if (format === 'gguf') {
      const summary = exportGguf(loaded, adapter, { ...v, merge: v.merge === true });
      const what = adapter && !v.merge ? `${adapter.method} adapter` : adapter ? 'merged model' : 'model';
      io.line(
        `wrote ${v.out} (GGUF ${summary.arch} ${what}, ${summary.tensors} tensors, ${v.dtype ?? 'f32'})`,
      );
      if (summary.f16Fallbacks.length)
        io.line(`note: ${summary.f16Fallbacks.length} tensors in f16 (q8_0 needs rows of a multiple of 32)`);
      if (v.json)
        io.json({
          out: v.out,
          format,
          arch: summary.arch,
          tensors: summary.tensors,
          dtype: v.dtype ?? 'f32',
          f16Fallbacks: summary.f16Fallbacks,
          method: adapter?.method ?? null,
          merged: Boolean(adapter && v.merge),
        });
      return 0;
    }
    if (format === 'peft' && v['to-plain-lora']) {
      const lora = convertibleLora(adapter!, v.adapter!);
      savePlainLora(lora, v.out, { baseModelNameOrPath: v.model });
      const c = lora.config;
      io.line(
        `wrote ${v.out} (plain LoRA of rank ${2 * c.r} converted from init '${c.init}', for the original ${v.model})`,
      );
      if (v.json)
        io.json({
          out: v.out,
          format,
          method: lora.method,
          merged: false,
          convertedFrom: c.init,
          r: 2 * c.r,
        });
      return 0;
    }
    if (format === 'peft') {
      adapter!.save(v.out, { baseModelNameOrPath: v.model });
      io.line(`wrote ${v.out} (${adapter!.method} adapter)`);
      if (v.json) io.json({ out: v.out, format, method: adapter!.method, merged: false });
      return 0;
    }
    const model = adapter ? (adapter.mergeAndUnload() as CausalLM) : loaded.model;
    if (format === 'onnx') {
      const summary = exportOnnx(model, v.out, {
        tokenizerFrom: loaded.tokenizer ? v.model : undefined,
        generationConfig: loaded.generationConfig,
        producerVersion: attuneVersion(),
      });
      io.line(
        `wrote ${v.out} (ONNX decoder ${summary.modelFile}, ${summary.nodes} nodes, opset ${summary.opset}${adapter ? `, ${adapter.method} adapter merged` : ''})`,
      );
      if (v.json)
        io.json({
          out: v.out,
          format,
          modelFile: summary.modelFile,
          bytes: summary.bytes,
          nodes: summary.nodes,
          opset: summary.opset,
          method: adapter?.method ?? null,
          merged: Boolean(adapter),
        });
      return 0;
    }
    saveModel(model, v.out, {
      tokenizerFrom: loaded.tokenizer ? v.model : undefined,
      generationConfig: loaded.generationConfig,
    });
    io.line(
      adapter
        ? `wrote ${v.out} (${adapter.method} adapter merged into ${v.model})`
        : `wrote ${v.out} (model)`,
    );
    if (v.json) io.json({ out: v.out, format, method: adapter?.method ?? null, merged: Boolean(adapter) });
    return 0;
  },
});
