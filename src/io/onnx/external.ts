/**
 * ONNX external data: large initializers moved out of the protobuf (whose messages cannot exceed
 * 2 GiB) into side files next to the model, as onnxruntime reads them — each tensor's
 * `data_location` EXTERNAL with `location` (a file name relative to the model), `offset` and
 * `length`. Files are `<model>_data`, `<model>_data_1`, ... (transformers.js's chunk names), each
 * at most `maxChunkBytes`.
 */

/** TensorProto.DataLocation EXTERNAL. */
const EXTERNAL = 1;

/** One side file: its name and the tensor bytes in order. */
export interface ExternalChunk {
  name: string;
  parts: Buffer[];
  bytes: number;
}

/**
 * Move every initializer of at least `minBytes` raw bytes of the ModelProto object `model` (as
 * `OnnxGraph.model` returns it) into chunks named after `modelFile` (e.g. `model.onnx` ->
 * `model.onnx_data`); offsets are 64-byte aligned. Mutates `model`; returns the chunks.
 */
export function externalizeInitializers(
  model: { graph: { initializer: Record<string, unknown>[] } },
  modelFile: string,
  options: { minBytes?: number; maxChunkBytes?: number } = {},
): ExternalChunk[] {
  const minBytes = options.minBytes ?? 1024;
  const maxChunk = options.maxChunkBytes ?? 2 ** 31 - 2 ** 20;
  const chunks: ExternalChunk[] = [];
  const current = (need: number): ExternalChunk => {
    const last = chunks.at(-1);
    if (last && last.bytes + need <= maxChunk) return last;
    const chunk = {
      name: `${modelFile}_data${chunks.length === 0 ? '' : `_${chunks.length}`}`,
      parts: [],
      bytes: 0,
    };
    chunks.push(chunk);
    return chunk;
  };
  for (const t of model.graph.initializer) {
    const raw = t.rawData as Buffer | undefined;
    if (!raw || raw.length < minBytes) continue;
    const pad = (64 - (current(raw.length).bytes % 64)) % 64;
    const chunk = current(raw.length + pad);
    if (chunk.bytes % 64 !== 0) {
      const fill = (64 - (chunk.bytes % 64)) % 64;
      chunk.parts.push(Buffer.alloc(fill));
      chunk.bytes += fill;
    }
    t.externalData = [
      { key: 'location', value: chunk.name },
      { key: 'offset', value: String(chunk.bytes) },
      { key: 'length', value: String(raw.length) },
    ];
    t.dataLocation = EXTERNAL;
    chunk.parts.push(raw);
    chunk.bytes += raw.length;
    delete t.rawData;
  }
  return chunks;
}
