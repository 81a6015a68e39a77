/**
 * GGUF constants as llama.cpp defines them (gguf-py/gguf/constants.py, ggml.h): file version 3,
 * metadata value types, the tensor element types Attune writes, llama.cpp's file-type codes
 * (`general.file_type`) and token types (`tokenizer.ggml.token_type`).
 */

/** "GGUF" as a little-endian u32. */
export const GGUF_MAGIC = 0x46554747;
/** The GGUF version written (v3: 64-bit counts and lengths). */
export const GGUF_VERSION = 3;
/** Alignment of the tensor data section and of every tensor in it (`general.alignment`). */
export const GGUF_ALIGNMENT = 32;
/** `general.quantization_version` as llama.cpp's converter writes it (GGML_QNT_VERSION). */
export const GGML_QUANT_VERSION = 2;

/** GGUF metadata value types. */
export const GgufValueType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;

/** The tensor element types Attune writes, with their ggml type ids. */
export const GgmlType = { F32: 0, F16: 1, Q8_0: 8, BF16: 30 } as const;
export type GgmlTypeId = (typeof GgmlType)[keyof typeof GgmlType];

/** Elements per q8_0 block (QK8_0) and bytes per block (an f16 scale + 32 int8). */
export const Q8_0_BLOCK = 32;
export const Q8_0_BLOCK_BYTES = 34;

/** The output element types of `attune export --format gguf --dtype`. */
export const GGUF_DTYPES = ['f32', 'f16', 'bf16', 'q8_0'] as const;
export type GgufDtype = (typeof GGUF_DTYPES)[number];

/** ggml type of the matrices for each output dtype. */
export const GGML_TYPE_OF: Record<GgufDtype, GgmlTypeId> = {
  f32: GgmlType.F32,
  f16: GgmlType.F16,
  bf16: GgmlType.BF16,
  q8_0: GgmlType.Q8_0,
};

/** llama.cpp's `general.file_type` (LlamaFileType: ALL_F32, MOSTLY_F16, MOSTLY_Q8_0, MOSTLY_BF16). */
export const FILE_TYPE_OF: Record<GgufDtype, number> = { f32: 0, f16: 1, q8_0: 7, bf16: 32 };

/** llama.cpp's token types (gguf TokenType). */
export const TokenType = {
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;

/** Bytes a tensor of `elements` elements (a multiple of 32 for q8_0) takes in `type`. */
export function ggmlByteLength(type: GgmlTypeId, elements: number): number {
  switch (type) {
    case GgmlType.F32:
      return elements * 4;
    case GgmlType.F16:
    case GgmlType.BF16:
      return elements * 2;
    case GgmlType.Q8_0:
      return (elements / Q8_0_BLOCK) * Q8_0_BLOCK_BYTES;
  }
}
