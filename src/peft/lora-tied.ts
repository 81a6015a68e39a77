/**
 * 'lm_head' in target_modules / modules_to_save on a model whose LM head is tied to the token
 * embedding (tie_word_embeddings: there is no lm_head module, the head applies the table), handled
 * as PEFT does (tuners_utils.BaseTuner._check_tied_modules, LoraModel._add_targets_to_tie and
 * _add_modules_to_save_to_tie; PEFT's lm_head there is a Linear whose weight is the shared table):
 *
 * - with ensure_weight_tying: the entry is replaced by the embedding's path — a list drops
 *   'lm_head' and gains e.g. 'model.embed_tokens', a regex r becomes `(?:r|^model\.embed_tokens$)` —
 *   so the embedding is adapted and the head applies the same adapter (lora-head.ts). The rewritten
 *   target_modules / modules_to_save are what gets saved, as PEFT saves its modified config.
 * - without (PEFT's default): PEFT wraps that lm_head Linear in a lora.Linear, so the update
 *   applies to the head only and the input side keeps the base table. Here that is a LoraLinear
 *   over a Linear holding the table, outside the module tree (the model has no lm_head module),
 *   applied through the head override; saved as PEFT saves it, `lm_head.lora_A.weight` [r, hidden]
 *   and `lm_head.lora_B.weight` [vocab, r]. Merging it is refused (the one table is both sides).
 *   A modules_to_save copy of the head alone is not supported and is refused, naming the fix.
 *
 * As in PEFT, `layers_to_transform` keeps 'lm_head' from matching (it has no layer index), and an
 * exclude_modules entry that matches 'lm_head' removes it.
 */
import { ConfigError } from '../errors.ts';
import type { CausalLM, LmHeadOverride } from '../models/index.ts';
import { Linear, type Parameter } from '../nn/index.ts';
import { loraLinearHead } from './lora-head.ts';
import { LoraLinear, type LoraLinearOptions } from './lora-linear.ts';
import { fullMatchRegex, isAllLinear, matchesTargetModules, type TargetModules } from './targets.ts';

/** The module name PEFT gives the head of a transformers causal LM. */
export const LM_HEAD = 'lm_head';

/** How a tied model reads a config's 'lm_head' entries (see the file comment). */
export interface TiedHeadPlan {
  /** target_modules to save and (unless headOnly) to select with; 'lm_head' rewritten under ensure_weight_tying. */
  targetModules: TargetModules;
  /** What to select the other targets with: null when 'lm_head' was the only entry of a list. */
  selectTargets: TargetModules | null;
  /** modules_to_save, 'lm_head' replaced by the embedding's path under ensure_weight_tying. */
  modulesToSave: string[] | null;
  /** Whether the head gets a LoRA of its own over the tied table (no ensure_weight_tying). */
  headOnly: boolean;
}

/** What the plan reads from the resolved LoRA config. */
export interface TiedHeadFields {
  targetModules: TargetModules;
  excludeModules: TargetModules | null;
  modulesToSave: string[] | null;
  ensureWeightTying: boolean;
  layersToTransform: number | readonly number[] | null;
}

/** Whether `targets` (PEFT's rules: list entries by suffix, a string as a full-match regex) name 'lm_head'. */
export function namesLmHead(targets: TargetModules | null): boolean {
  if (targets === null || isAllLinear(targets)) return false; // all-linear leaves the output layer out
  return typeof targets === 'string' ? fullMatchRegex(targets).test(LM_HEAD) : targets.includes(LM_HEAD);
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** PEFT's reading of `c`'s 'lm_head' entries on a model whose head is the table at `tiedPath`. */
export function tiedHeadPlan(c: TiedHeadFields, tiedPath: string): TiedHeadPlan {
  const layers = c.layersToTransform;
  const layerFiltered = layers !== null && (typeof layers === 'number' || layers.length > 0);
  const excluded =
    c.excludeModules !== null && matchesTargetModules(LM_HEAD, c.excludeModules, 'exclude_modules');
  const inTargets = namesLmHead(c.targetModules) && !layerFiltered && !excluded;
  const inSave = c.modulesToSave?.includes(LM_HEAD) ?? false;
  if (inSave && !c.ensureWeightTying)
    throw new ConfigError(
      `lora: modules_to_save names '${LM_HEAD}', but this model ties its LM head to '${tiedPath}' (tie_word_embeddings) and a trained copy of the head alone is not supported; set ensure_weight_tying: true (PEFT then trains one copy of '${tiedPath}' for both sides) or name '${tiedPath.slice(tiedPath.lastIndexOf('.') + 1)}' for the input side only`,
    );
  const modulesToSave =
    inSave && c.modulesToSave
      ? [...new Set(c.modulesToSave.map((m) => (m === LM_HEAD ? tiedPath : m)))]
      : c.modulesToSave;
  const t = c.targetModules;
  if (!inTargets) return { targetModules: t, selectTargets: t, modulesToSave, headOnly: false };
  if (c.ensureWeightTying) {
    // PEFT's _add_targets_to_tie: the adapter goes on the input embedding, the head is tied to it
    const rewritten =
      typeof t === 'string'
        ? `(?:${t}|^${escapeRegex(tiedPath)}$)`
        : [...new Set([...t.filter((m) => m !== LM_HEAD), tiedPath])];
    return { targetModules: rewritten, selectTargets: rewritten, modulesToSave, headOnly: false };
  }
  const rest = typeof t === 'string' ? t : t.filter((m) => m !== LM_HEAD);
  return {
    targetModules: t,
    selectTargets: typeof rest !== 'string' && rest.length === 0 ? null : rest,
    modulesToSave,
    headOnly: true,
  };
}

/**
 * The head-only LoRA of a tied model: a LoraLinear over a Linear [vocab, hidden] whose weight is
 * `table` itself (frozen, shared with the embedding), kept outside the module tree.
 */
export function tiedHeadLayer(table: Parameter, options: LoraLinearOptions): LoraLinear {
  const [vocab, hidden] = table.shape as [number, number];
  const holder = new Linear(hidden, vocab, {
    bias: false,
    init: 'zeros',
    dtype: table.dtype === 'f64' || table.dtype === 'bf16' ? table.dtype : 'f32',
  });
  const placeholder = holder.weight;
  holder.setParameter('weight', table);
  placeholder.release();
  return new LoraLinear(holder, options);
}

/**
 * The head override of the head-only LoRA: `loraLinearHead`'s, with the layer (outside the tree)
 * following the model's training mode, LM-head precision and dropout key at every call.
 */
export function tiedLoraLinearHead(model: CausalLM, layer: LoraLinear): LmHeadOverride {
  const head = loraLinearHead(LM_HEAD, layer);
  const sync = () => {
    if (layer.training !== model.training) layer.train(model.training);
    layer.setComputePrecision(model.lmHeadPrecision);
    const key = model.dropoutKey();
    if (layer.lora_dropout.key !== key) layer.lora_dropout.setKey(key);
  };
  return {
    weight: () => {
      sync();
      return head.weight();
    },
    logits: (hidden) => {
      sync();
      return head.logits(hidden);
    },
  };
}
