/** ONNX writing: the protobuf schema subset and a graph builder (models/onnx builds decoders with it). */
export * from './external.ts';
export * from './graph.ts';
export * from './proto.ts';
