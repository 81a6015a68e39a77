/**
 * Sampling-based scores (LM-Polygraph definitions) over N answers sampled for one question:
 *   semantic_entropy     -mean_j log sum_{k in C(j)} p_k     (C(j): the meaning cluster of sample j,
 *                        p_k = exp(log p of sample k); LM-Polygraph's SemanticEntropy)
 *   num_semantic_sets    the number of meaning clusters
 *   lexical_similarity   -mean_{i<j} ROUGE-L(s_i, s_j)
 *   eig_val_laplacian    sum_k max(0, 1 - lambda_k) over the eigenvalues of the normalised
 *                        Laplacian L = I - D^-1/2 W D^-1/2 of the ROUGE-L similarity matrix W
 *   deg_mat              trace(m I - D) / m^2 = 1 - sum_ij W_ij / m^2   (D = diag of W's row sums)
 *   eccentricity         || V_k - 1 mean(V_k) ||_F, V_k: the eigenvectors of L with eigenvalue < 0.9
 * Clustering is LM-Polygraph's greedy one: a sample joins the first cluster whose first member
 * means the same (normalised exact match, or ROUGE-L >= a threshold), else opens a new cluster.
 */
import { matrix64, symmetricEigenRows } from '../../tensor/index.ts';
import { normalizeAnswer, rougeL } from '../grade.ts';
import { type AnswerSamples, registerSamplingScore } from './registry.ts';

/** Eigenvalue bound of the eigenvectors eccentricity keeps (LM-Polygraph's `thres`). */
export const ECCENTRICITY_THRESHOLD = 0.9;

/** Cluster index of each sample (clusters numbered in order of their first member). */
export function semanticClusters(s: Pick<AnswerSamples, 'texts' | 'cluster' | 'rougeThreshold'>): number[] {
  const heads: number[] = [];
  const normalized = s.texts.map(normalizeAnswer);
  const same = (a: number, b: number) =>
    s.cluster === 'exact'
      ? normalized[a] === normalized[b]
      : normalized[a] === normalized[b] || rougeL(s.texts[a]!, s.texts[b]!) >= s.rougeThreshold;
  return s.texts.map((_, i) => {
    const found = heads.findIndex((h) => same(h, i));
    if (found >= 0) return found;
    heads.push(i);
    return heads.length - 1;
  });
}

/** log sum exp of `xs`. */
function logSumExp(xs: readonly number[]): number {
  const m = Math.max(...xs);
  if (m === -Infinity) return -Infinity;
  return m + Math.log(xs.reduce((s, x) => s + Math.exp(x - m), 0));
}

/** Semantic entropy: -mean_j log sum_{k in C(j)} p_k (see the file comment). */
export function semanticEntropy(clusters: readonly number[], logprobs: readonly number[]): number {
  const byCluster = new Map<number, number[]>();
  clusters.forEach((c, j) => {
    byCluster.set(c, [...(byCluster.get(c) ?? []), logprobs[j]!]);
  });
  const clusterLogp = new Map([...byCluster].map(([c, lps]) => [c, logSumExp(lps)]));
  return -clusters.reduce((s, c) => s + clusterLogp.get(c)!, 0) / clusters.length;
}

/**
 * The ROUGE-L similarity matrix W (m x m, row-major): W_ij = ROUGE-L(s_i, s_j), and 1 on the
 * diagonal (an answer is identical to itself, even an empty one).
 */
export function rougeSimilarityMatrix(texts: readonly string[]): Float64Array {
  const m = texts.length;
  const w = new Float64Array(m * m);
  for (let i = 0; i < m; i++) {
    w[i * m + i] = 1;
    for (let j = i + 1; j < m; j++) {
      const same = normalizeAnswer(texts[i]!) === normalizeAnswer(texts[j]!);
      const v = same ? 1 : rougeL(texts[i]!, texts[j]!);
      w[i * m + j] = v;
      w[j * m + i] = v;
    }
  }
  return w;
}

/** The normalised Laplacian I - D^-1/2 W D^-1/2 of a symmetric m x m similarity matrix. */
export function normalizedLaplacian(w: Float64Array, m: number): Float64Array {
  const d = Array.from({ length: m }, (_, i) => {
    let s = 0;
    for (let j = 0; j < m; j++) s += w[i * m + j]!;
    if (!(s > 0)) throw new RangeError(`similarity matrix row ${i} sums to ${s}; degrees must be positive`);
    return 1 / Math.sqrt(s);
  });
  const l = new Float64Array(m * m);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < m; j++) l[i * m + j] = (i === j ? 1 : 0) - d[i]! * w[i * m + j]! * d[j]!;
  return l;
}

/** EigValLaplacian: sum_k max(0, 1 - lambda_k) over the normalised Laplacian's eigenvalues. */
export function eigValLaplacian(w: Float64Array, m: number): number {
  const { values } = symmetricEigenRows(matrix64(m, m, normalizedLaplacian(w, m)), { vectors: false });
  return values.reduce((s, lambda) => s + Math.max(0, 1 - lambda), 0);
}

/** DegMat: trace(m I - D) / m^2 = 1 - sum_ij W_ij / m^2. */
export function degMat(w: Float64Array, m: number): number {
  let total = 0;
  for (let i = 0; i < m * m; i++) total += w[i]!;
  return (m * m - total) / (m * m);
}

/**
 * Eccentricity: the Frobenius norm of the sample embeddings (rows of the eigenvectors of the
 * normalised Laplacian with eigenvalue < `threshold`) minus their mean.
 */
export function eccentricity(w: Float64Array, m: number, threshold = ECCENTRICITY_THRESHOLD): number {
  const { values, rows } = symmetricEigenRows(matrix64(m, m, normalizedLaplacian(w, m)));
  let sq = 0;
  values.forEach((lambda, k) => {
    if (!(lambda < threshold)) return;
    const v = rows!.subarray(k * m, (k + 1) * m);
    const mean = v.reduce((s, x) => s + x, 0) / m;
    for (const x of v) sq += (x - mean) ** 2;
  });
  return Math.sqrt(sq);
}

/** Mean ROUGE-L over the pairs i < j of a similarity matrix. */
function meanPairwise(w: Float64Array, m: number): number {
  let s = 0;
  for (let i = 0; i < m; i++) for (let j = i + 1; j < m; j++) s += w[i * m + j]!;
  return s / ((m * (m - 1)) / 2);
}

registerSamplingScore({
  name: 'semantic_entropy',
  clustered: true,
  description: '-mean_j log sum_{k in C(j)} p_k over N samples clustered by meaning (exact match or ROUGE-L)',
  computeSamples: (s) => semanticEntropy(semanticClusters(s), s.logprobs),
});
registerSamplingScore({
  name: 'num_semantic_sets',
  clustered: true,
  description: 'number of meaning clusters among N samples',
  computeSamples: (s) => new Set(semanticClusters(s)).size,
});
registerSamplingScore({
  name: 'lexical_similarity',
  description: '-mean_{i<j} ROUGE-L(s_i, s_j) over N samples',
  computeSamples: (s) => -meanPairwise(rougeSimilarityMatrix(s.texts), s.texts.length),
});
registerSamplingScore({
  name: 'eig_val_laplacian',
  description: 'sum_k max(0, 1 - lambda_k), eigenvalues of the normalised Laplacian of the ROUGE-L matrix W',
  computeSamples: (s) => eigValLaplacian(rougeSimilarityMatrix(s.texts), s.texts.length),
});
registerSamplingScore({
  name: 'deg_mat',
  description: 'trace(m I - D) / m^2 = 1 - sum_ij W_ij / m^2 (D: row sums of the ROUGE-L matrix W)',
  computeSamples: (s) => degMat(rougeSimilarityMatrix(s.texts), s.texts.length),
});
registerSamplingScore({
  name: 'eccentricity',
  description: `Frobenius norm of the centred Laplacian eigenvector embeddings (eigenvalues < ${ECCENTRICITY_THRESHOLD})`,
  computeSamples: (s) => eccentricity(rougeSimilarityMatrix(s.texts), s.texts.length),
});
