/**
 * `init_adapter: DIR` in a training config: start from an existing adapter's weights (PEFT's layout,
 * adapter_config.json + adapter_model.safetensors), e.g. to continue a LoRA fine-tune on new data.
 *
 * Decision: the run's `method` options stay the source of truth and must agree with the adapter.
 * The tuner is applied from the run's options as usual, the adapter_config.json it would write is
 * compared field by field with DIR's (fields that only describe where the file came from are
 * skipped: base_model_name_or_path, revision, inference_mode, auto_mapping, task_type, the megatron
 * and loftq fields; `target_modules` / `exclude_modules` lists compare as sets, since PEFT saves
 * them from a Python set), and any difference is refused naming the field and both values. Then the
 * adapter's tensors are loaded (names, shapes and dtypes all checked first). So the first step
 * starts exactly at the adapter's loss, and a mismatch is never silently "fixed".
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, FormatError } from '../errors.ts';
import { type JsonObject, readJsonObject } from '../io/index.ts';
import { ADAPTER_CONFIG_FILE, type Adapter } from '../peft/index.ts';

/** adapter_config.json fields that do not change what the adapter computes. */
const PROVENANCE_FIELDS = new Set([
  'base_model_name_or_path',
  'revision',
  'inference_mode',
  'auto_mapping',
  'task_type',
  'megatron_config',
  'megatron_core',
  'loftq_config',
]);

/** Values an absent field stands for in PEFT (fields Attune writes only when set). */
const ABSENT_DEFAULTS: JsonObject = {
  exclude_modules: null,
  lora_bias: false,
  kasa_config: null,
  corda_config: null,
  use_dora: false,
  use_rslora: false,
  layers_to_transform: null,
  layers_pattern: null,
  rank_pattern: {},
  alpha_pattern: {},
  modules_to_save: null,
};

const SET_FIELDS = new Set(['target_modules', 'exclude_modules']);

function canonical(field: string, value: unknown): string {
  const v = value === undefined ? (ABSENT_DEFAULTS[field] ?? null) : value;
  if (SET_FIELDS.has(field) && Array.isArray(v)) return JSON.stringify([...new Set(v.map(String))].sort());
  return JSON.stringify(sortKeys(v));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v !== null && typeof v === 'object')
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, sortKeys((v as JsonObject)[k])]),
    );
  return v;
}

/**
 * Load the adapter in `dir` into `adapter` (freshly applied from the run's method options), after
 * checking that its adapter_config.json describes the same adapter (see the file comment). Throws
 * a ConfigError / FormatError naming `dir`'s file and the first differing field; nothing is loaded then.
 */
export function initFromAdapter(adapter: Adapter, dir: string): void {
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    // reported below
  }
  if (!isDir) throw new ConfigError(`init_adapter: ${dir} is not a directory (expected a saved adapter)`);
  const file = join(dir, ADAPTER_CONFIG_FILE);
  const theirs = readJsonObject(file, 'a PEFT adapter config (init_adapter)');
  const tmp = mkdtempSync(join(tmpdir(), 'attune-init-adapter-'));
  let ours: JsonObject;
  try {
    adapter.save(tmp);
    ours = readJsonObject(join(tmp, ADAPTER_CONFIG_FILE), 'the run adapter config');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const fields = [...new Set([...Object.keys(ours), ...Object.keys(theirs)])]
    .filter((f) => !PROVENANCE_FIELDS.has(f))
    .sort();
  for (const field of fields) {
    const a = canonical(field, ours[field]);
    const b = canonical(field, theirs[field]);
    if (a !== b) {
      throw new FormatError(
        file,
        `init_adapter: field '${field}' is ${b}, but the run's method options give ${a}; make the method options match the adapter (or drop init_adapter)`,
      );
    }
  }
  adapter.load(dir);
}
