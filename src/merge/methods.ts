/**
 * The merge methods Attune runs, each described as mergekit describes it: which parameters it reads
 * per model and globally, their defaults, and how a tensor is merged (sparsification, sign
 * consensus). Where mergekit has the method its defaults are the ones here (registry.py and
 * generalized_task_arithmetic.py); the papers' and PEFT's variants are the Attune options
 * `rescale`, `scope` and `divisor` (METHODS.md section 3).
 */

/** Every merge method Attune runs, in the order the docs list them. */
export const MERGE_METHODS = [
  'linear',
  'greedy_soup',
  'task_arithmetic',
  'ties',
  'dare_linear',
  'dare_ties',
  'breadcrumbs',
  'breadcrumbs_ties',
  'slerp',
  'model_stock',
] as const;

/** A merge method name as written in `merge_method`. */
export type MergeMethodName = (typeof MERGE_METHODS)[number];

/** How task vectors are sparsified before they are combined (mergekit's SparsificationMethod). */
export type Sparsification = 'magnitude' | 'random' | 'magnitude_outliers';

/** How the kept entries of a sparsified task vector are rescaled. */
export type Rescale = 'l1' | 'inverse_density' | 'none';

/** Over what the magnitude ranking of TIES / breadcrumbs runs. */
export type Scope = 'tensor' | 'global' | 'row';

/** What TIES divides the agreeing sum by (with `normalize: true`). */
export type Divisor = 'weights' | 'count';

/** Parameters a model entry can set (and the global `parameters` can default for all models). */
export const MODEL_PARAMETER_NAMES = ['weight', 'density', 'gamma'] as const;
/** A per-model parameter name. */
export type ModelParameterName = (typeof MODEL_PARAMETER_NAMES)[number];

/** Parameters only the global `parameters` block sets. */
export const GLOBAL_PARAMETER_NAMES = [
  'normalize',
  'lambda',
  'rescale',
  'scope',
  'divisor',
  'int8_mask',
  't',
  'filter_wise',
] as const;
/** A global-only parameter name. */
export type GlobalParameterName = (typeof GLOBAL_PARAMETER_NAMES)[number];

/** Every parameter name of any method. */
export const PARAMETER_NAMES: readonly string[] = [...MODEL_PARAMETER_NAMES, ...GLOBAL_PARAMETER_NAMES];

/** What a method is and what it reads. */
export interface MethodSpec {
  name: MergeMethodName;
  /** The tensor rule: a weighted mean, task arithmetic (with optional sparsification / consensus), slerp, model stock. */
  kind: 'linear' | 'task_arithmetic' | 'slerp' | 'model_stock';
  /** Sparsification of each task vector (null: none). */
  sparsification: Sparsification | null;
  /** TIES sign election over the weighted task vectors. */
  consensus: boolean;
  /** Whether `base_model` is required. */
  needsBase: boolean;
  /** Parameters each model entry may set. */
  modelParameters: readonly ModelParameterName[];
  /** Parameters only the global block may set. */
  globalParameters: readonly GlobalParameterName[];
  /** Default of `normalize` (mergekit's default_normalize; linear: true). */
  normalize: boolean;
  /** Default of `rescale` (mergekit: rescale true = L1 for DARE, false otherwise). */
  rescale: Rescale;
  /** Values of `scope` this method accepts (the first is the default). */
  scopes: readonly Scope[];
}

const GTA_GLOBALS = ['normalize', 'lambda', 'int8_mask'] as const;

/** The specification of every method. */
export const METHOD_SPECS: Readonly<Record<MergeMethodName, MethodSpec>> = {
  linear: {
    name: 'linear',
    kind: 'linear',
    sparsification: null,
    consensus: false,
    needsBase: false,
    modelParameters: ['weight'],
    globalParameters: ['normalize'],
    normalize: true,
    rescale: 'none',
    scopes: ['tensor'],
  },
  greedy_soup: {
    name: 'greedy_soup',
    kind: 'linear',
    sparsification: null,
    consensus: false,
    needsBase: false,
    modelParameters: [],
    globalParameters: [],
    normalize: true,
    rescale: 'none',
    scopes: ['tensor'],
  },
  task_arithmetic: {
    name: 'task_arithmetic',
    kind: 'task_arithmetic',
    sparsification: null,
    consensus: false,
    needsBase: true,
    modelParameters: ['weight'],
    globalParameters: GTA_GLOBALS,
    normalize: false,
    rescale: 'none',
    scopes: ['tensor'],
  },
  ties: {
    name: 'ties',
    kind: 'task_arithmetic',
    sparsification: 'magnitude',
    consensus: true,
    needsBase: true,
    modelParameters: ['weight', 'density'],
    globalParameters: [...GTA_GLOBALS, 'rescale', 'scope', 'divisor'],
    normalize: true,
    rescale: 'none',
    scopes: ['tensor', 'global', 'row'],
  },
  dare_linear: {
    name: 'dare_linear',
    kind: 'task_arithmetic',
    sparsification: 'random',
    consensus: false,
    needsBase: true,
    modelParameters: ['weight', 'density'],
    globalParameters: [...GTA_GLOBALS, 'rescale'],
    normalize: false,
    rescale: 'l1',
    scopes: ['tensor'],
  },
  dare_ties: {
    name: 'dare_ties',
    kind: 'task_arithmetic',
    sparsification: 'random',
    consensus: true,
    needsBase: true,
    modelParameters: ['weight', 'density'],
    globalParameters: [...GTA_GLOBALS, 'rescale', 'divisor'],
    normalize: false,
    rescale: 'l1',
    scopes: ['tensor'],
  },
  breadcrumbs: {
    name: 'breadcrumbs',
    kind: 'task_arithmetic',
    sparsification: 'magnitude_outliers',
    consensus: false,
    needsBase: true,
    modelParameters: ['weight', 'density', 'gamma'],
    globalParameters: [...GTA_GLOBALS, 'rescale', 'scope'],
    normalize: false,
    rescale: 'none',
    scopes: ['tensor', 'row', 'global'],
  },
  breadcrumbs_ties: {
    name: 'breadcrumbs_ties',
    kind: 'task_arithmetic',
    sparsification: 'magnitude_outliers',
    consensus: true,
    needsBase: true,
    modelParameters: ['weight', 'density', 'gamma'],
    globalParameters: [...GTA_GLOBALS, 'rescale', 'scope', 'divisor'],
    normalize: false,
    rescale: 'none',
    scopes: ['tensor', 'row', 'global'],
  },
  slerp: {
    name: 'slerp',
    kind: 'slerp',
    sparsification: null,
    consensus: false,
    needsBase: true,
    modelParameters: [],
    globalParameters: ['t'],
    normalize: false,
    rescale: 'none',
    scopes: ['tensor'],
  },
  model_stock: {
    name: 'model_stock',
    kind: 'model_stock',
    sparsification: null,
    consensus: false,
    needsBase: true,
    modelParameters: [],
    globalParameters: ['filter_wise'],
    normalize: false,
    rescale: 'none',
    scopes: ['tensor'],
  },
};

/** Default of each per-model parameter (mergekit: weight is required; Attune defaults it to 1). */
export const MODEL_PARAMETER_DEFAULTS: Readonly<Record<ModelParameterName, number>> = {
  weight: 1,
  density: 1,
  gamma: 0.01,
};

/** Whether `name` is a method Attune runs. */
export function isMergeMethod(name: string): name is MergeMethodName {
  return (MERGE_METHODS as readonly string[]).includes(name);
}

/** mergekit methods Attune does not run (named in the error instead of a spelling suggestion). */
export const UNSUPPORTED_MERGEKIT_METHODS: readonly string[] = [
  'passthrough',
  'nuslerp',
  'multislerp',
  'della',
  'della_linear',
  'sce',
  'karcher',
  'arcee_fusion',
  'nearswap',
];
