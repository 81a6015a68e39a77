/** Embedding table lookup. */
import { embedding, type Tensor } from '../tensor/index.ts';
import { checkPositiveInt, type InitOptions, initRng } from './init.ts';
import { Module } from './module.ts';
import { Parameter } from './parameter.ts';

/**
 * A table of `numEmbeddings` vectors of size `embeddingDim`. Parameter: `weight`
 * [numEmbeddings, embeddingDim], initialised N(0, 1) like PyTorch.
 */
export class Embedding extends Module {
  readonly numEmbeddings: number;
  readonly embeddingDim: number;
  weight: Parameter;

  /** An embedding table of `numEmbeddings` rows of `embeddingDim` values. */
  constructor(numEmbeddings: number, embeddingDim: number, options: InitOptions = {}) {
    super();
    checkPositiveInt(numEmbeddings, 'numEmbeddings', 'Embedding');
    checkPositiveInt(embeddingDim, 'embeddingDim', 'Embedding');
    this.numEmbeddings = numEmbeddings;
    this.embeddingDim = embeddingDim;
    const dtype = options.dtype ?? 'f32';
    const init = options.init ?? 'default';
    const shape = [numEmbeddings, embeddingDim];
    const weight =
      init === 'default'
        ? Parameter.normal(shape, 0, 1, initRng(options, 'Embedding'), dtype)
        : Parameter.full(shape, init === 'ones' ? 1 : 0, dtype);
    this.weight = this.registerParameter('weight', weight);
  }

  /** ids (i32, any shape) -> [...ids.shape, embeddingDim]. */
  forward(ids: Tensor): Tensor {
    return embedding(this.weight, ids);
  }
}
