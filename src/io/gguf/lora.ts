/**
 * A LoRA adapter alone -> a GGUF adapter file llama.cpp applies over the base GGUF
 * (`llama-cli -m model.gguf --lora adapter.gguf`), in the layout of convert_lora_to_gguf.py and
 * src/llama-adapter.cpp: `general.type = adapter`, `adapter.type = lora`, `adapter.lora.alpha`,
 * and per adapted matrix `<gguf base name>.lora_a` (row-major [r, in]) and `.lora_b` ([out, r]).
 * llama.cpp scales B A by alpha / r (r from lora_a); rsLoRA's alpha / sqrt(r) is written as
 * alpha' = alpha * sqrt(r). Llama q/k: the base rows are permuted (arch.ts), and since those rows
 * are B's rows, only B is permuted. GPT-2's Conv1D: PEFT keeps A [r, in] and B [out, r] whatever
 * the base layout, which is already llama.cpp's orientation of the transposed base tensor.
 */
import { TensorMismatchError } from '../../errors.ts';
import { formatShape, type Tensor } from '../../tensor/index.ts';
import type { JsonObject } from '../json.ts';
import { ggufArchitecture } from './arch.ts';
import type { GgufExportSummary } from './model.ts';
import { applyTransform, f32Values, generalMetadata, ggmlTypeFor, lazyTensor } from './tensors.ts';
import { GgmlType, type GgufDtype } from './types.ts';
import { type GgufTensorSpec, ggufKv, writeGguf } from './writer.ts';

/** The PEFT key prefix of adapter tensors. */
const PREFIX = 'base_model.model.';

export interface GgufLoraExport {
  /** The adapter's tensors under PEFT keys (`base_model.model.<module>.lora_A.weight`). */
  state: ReadonlyMap<string, Tensor>;
  r: number;
  loraAlpha: number;
  useRslora: boolean;
  /** The base model's config.json object. */
  config: JsonObject;
  /** Row-major shapes of the base model's tensors by Hub name (to check every pair against). */
  baseShapes: ReadonlyMap<string, readonly number[]>;
  /** `general.name`. */
  name: string;
  /** Element type of lora_a / lora_b (default f32). */
  dtype?: GgufDtype;
  /** The config.json path named in errors. */
  configPath?: string;
}

/** The `adapter.lora.alpha` llama.cpp needs so that its alpha / r equals the adapter's scaling. */
export function ggufLoraAlpha(loraAlpha: number, r: number, useRslora: boolean): number {
  return useRslora ? loraAlpha * Math.sqrt(r) : loraAlpha;
}

/** Write a LoRA adapter as the GGUF adapter file `path` (validated first, written atomically). */
export function exportLoraGguf(path: string, adapter: GgufLoraExport): GgufExportSummary {
  const dtype = adapter.dtype ?? 'f32';
  const arch = ggufArchitecture(adapter.config, adapter.configPath ?? 'config.json');
  const pairs = new Map<string, { a?: Tensor; b?: Tensor }>();
  for (const [key, tensor] of adapter.state) {
    const match = /^(.+)\.(lora_A|lora_B)\.weight$/.exec(key);
    if (!key.startsWith(PREFIX) || !match)
      throw new TensorMismatchError(
        `GGUF adapter export: '${key}' is not a LoRA matrix (llama.cpp adapters hold lora_A / lora_B pairs only)`,
      );
    const module = match[1]!.slice(PREFIX.length);
    const pair = pairs.get(module) ?? {};
    if (match[2] === 'lora_A') pair.a = tensor;
    else pair.b = tensor;
    pairs.set(module, pair);
  }
  if (pairs.size === 0)
    throw new TensorMismatchError('GGUF adapter export: the adapter has no LoRA matrices');
  const specs: GgufTensorSpec[] = [];
  const f16Fallbacks: string[] = [];
  const add = (name: string, tensor: Tensor, permuteHeads: number | null) => {
    const type = ggmlTypeFor(name, tensor.shape, dtype);
    if (dtype === 'q8_0' && type === GgmlType.F16) f16Fallbacks.push(name);
    specs.push(
      lazyTensor(name, tensor.shape, type, () => {
        const values = f32Values(tensor, `adapter tensor for '${name}'`);
        if (permuteHeads === null) return values;
        return applyTransform(values, tensor.shape, { kind: 'permute', heads: permuteHeads }, name).values;
      }),
    );
  };
  for (const [module, { a, b }] of [...pairs].sort(([x], [y]) => (x < y ? -1 : 1))) {
    if (!a || !b)
      throw new TensorMismatchError(
        `GGUF adapter export: module '${module}' has ${a ? 'lora_A' : 'lora_B'} only`,
      );
    const hubName = `${module}.weight`;
    const mapping = arch.map(hubName);
    const baseShape = adapter.baseShapes.get(hubName);
    if (!mapping || !baseShape)
      throw new TensorMismatchError(
        `GGUF adapter export: the adapter targets '${module}', which has no tensor in the base GGUF (tied or unknown to llama.cpp's ${arch.arch})`,
      );
    const [outDim, inDim] =
      mapping.transform.kind === 'transpose'
        ? [baseShape[1]!, baseShape[0]!]
        : [baseShape[0]!, baseShape[1]!];
    const r = adapter.r;
    if (a.shape.length !== 2 || a.shape[0] !== r || a.shape[1] !== inDim)
      throw new TensorMismatchError(
        `GGUF adapter export: '${module}' lora_A is ${formatShape(a.shape)}, expected ${formatShape([r, inDim])}`,
      );
    if (b.shape.length !== 2 || b.shape[0] !== outDim || b.shape[1] !== r)
      throw new TensorMismatchError(
        `GGUF adapter export: '${module}' lora_B is ${formatShape(b.shape)}, expected ${formatShape([outDim, r])}`,
      );
    add(`${mapping.name}.lora_a`, a, null);
    add(`${mapping.name}.lora_b`, b, mapping.transform.kind === 'permute' ? mapping.transform.heads : null);
  }
  const metadata = [
    ...generalMetadata(arch.arch, 'adapter', adapter.name),
    ggufKv.string('adapter.type', 'lora'),
    ggufKv.f32('adapter.lora.alpha', ggufLoraAlpha(adapter.loraAlpha, adapter.r, adapter.useRslora)),
  ];
  writeGguf(path, metadata, specs);
  return { path, arch: arch.arch, tensors: specs.length, f16Fallbacks };
}
