/**
 * Reading a LoRA adapter's weights file without applying it: pair each module's lora_A / lora_B
 * matrices and check them against a base checkpoint's tensors. Used by tools that fold adapters into
 * weights tensor by tensor (port, intruder analysis) instead of through modules.
 */
import { formatShape } from '../tensor/index.ts';
import { PEFT_KEY_PREFIX } from './tuner.ts';

/** What the pairing needs from a tensor file: its names and their shapes. */
interface TensorHeaders {
  names(): string[];
  has(name: string): boolean;
  info(name: string): { shape: readonly number[] };
}

/** One adapted matrix: W (`weight`, [out, in]) gets scaling * B A with B = bKey, A = aKey. */
export interface LoraMatrixTarget {
  /** Module path (`model.layers.0.self_attn.q_proj`). */
  module: string;
  /** The base tensor the update applies to (`<module>.weight`). */
  weight: string;
  aKey: string;
  bKey: string;
  /** [out, in] of B A. */
  shape: [number, number];
}

const KEY = /^(.+)\.(lora_A|lora_B)\.weight$/;

/**
 * Pair the lora_A / lora_B matrices of `adapter` (rank r) and check each update's target in `base`.
 * Returns the targets (sorted by module) and every problem found (`baseWhere` names the base in
 * messages); an adapter with no LoRA matrix is a problem.
 */
export function pairLoraMatrices(
  adapter: TensorHeaders,
  r: number,
  base: TensorHeaders,
  baseWhere: string,
): { targets: LoraMatrixTarget[]; problems: string[] } {
  const problems: string[] = [];
  const modules = new Map<string, { a?: string; b?: string }>();
  for (const name of adapter.names()) {
    const match = KEY.exec(name);
    if (!name.startsWith(PEFT_KEY_PREFIX) || !match) {
      problems.push(
        `'${name}' is not a LoRA matrix (expected ${PEFT_KEY_PREFIX}<module>.lora_A/lora_B.weight)`,
      );
      continue;
    }
    const module = match[1]!.slice(PEFT_KEY_PREFIX.length);
    const entry = modules.get(module) ?? {};
    if (match[2] === 'lora_A') entry.a = name;
    else entry.b = name;
    modules.set(module, entry);
  }
  const targets: LoraMatrixTarget[] = [];
  for (const [module, { a, b }] of [...modules].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))) {
    if (!a || !b) {
      problems.push(`module '${module}' has ${a ? 'lora_A' : 'lora_B'} but no ${a ? 'lora_B' : 'lora_A'}`);
      continue;
    }
    const aShape = adapter.info(a).shape;
    const bShape = adapter.info(b).shape;
    if (aShape.length !== 2 || bShape.length !== 2 || aShape[0] !== r || bShape[1] !== r) {
      problems.push(
        `module '${module}': lora_A ${formatShape(aShape)} and lora_B ${formatShape(bShape)} are not [r, in] and [out, r] with r = ${r}`,
      );
      continue;
    }
    const shape: [number, number] = [bShape[0]!, aShape[1]!];
    const weight = `${module}.weight`;
    if (!base.has(weight)) {
      problems.push(`'${weight}' (adapted by the adapter) is missing from ${baseWhere}`);
      continue;
    }
    const baseShape = base.info(weight).shape;
    if (baseShape.length !== 2 || baseShape[0] !== shape[0] || baseShape[1] !== shape[1]) {
      problems.push(
        `'${weight}' is ${formatShape(baseShape)} in ${baseWhere} but the adapter's B A is ${formatShape(shape)}`,
      );
      continue;
    }
    targets.push({ module, weight, aKey: a, bKey: b, shape });
  }
  if (modules.size === 0 && problems.length === 0) problems.push('the adapter holds no LoRA matrices');
  return { targets, problems };
}
