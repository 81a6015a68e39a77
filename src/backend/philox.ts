/**
 * Philox4x32-10, the counter-based generator for in-kernel randomness (dropout masks): the same
 * (seed, counter) gives the same bits on every backend and thread count. The native addon
 * implements the identical function.
 */

function mulhi32(a: number, b: number): number {
  const aLo = a & 0xffff;
  const aHi = a >>> 16;
  const bLo = b & 0xffff;
  const bHi = b >>> 16;
  const loLo = aLo * bLo;
  const loHi = aLo * bHi;
  const hiLo = aHi * bLo;
  const cross = (loLo >>> 16) + (loHi & 0xffff) + (hiLo & 0xffff);
  return (aHi * bHi + (loHi >>> 16) + (hiLo >>> 16) + Math.floor(cross / 65536)) >>> 0;
}

const PHILOX_M0 = 0xd2511f53;
const PHILOX_M1 = 0xcd9e8d57;
const PHILOX_W0 = 0x9e3779b9;
const PHILOX_W1 = 0xbb67ae85;

/**
 * Philox4x32-10 block function: counter (c0..c3), key (k0, k1) -> 4 random u32 written to out.
 */
export function philox4x32(
  c0: number,
  c1: number,
  c2: number,
  c3: number,
  k0: number,
  k1: number,
  out: Uint32Array,
): void {
  for (let round = 0; round < 10; round++) {
    const hi0 = mulhi32(PHILOX_M0, c0);
    const lo0 = Math.imul(PHILOX_M0, c0) >>> 0;
    const hi1 = mulhi32(PHILOX_M1, c2);
    const lo1 = Math.imul(PHILOX_M1, c2) >>> 0;
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
    k0 = (k0 + PHILOX_W0) >>> 0;
    k1 = (k1 + PHILOX_W1) >>> 0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

const philoxBlock = new Uint32Array(4);

/**
 * Uniform in [0, 1) (24 bits) for element `index` of the stream keyed by `seed`: block
 * floor(index / 4) of Philox4x32-10 with counter (block mod 2^32, floor(block / 2^32), 0, 0) and
 * key (seed, 0), lane index mod 4, then (u32 >>> 8) * 2^-24. Native kernels compute the same.
 */
export function philoxUniform(seed: number, index: number): number {
  const block = Math.floor(index / 4);
  philox4x32(block >>> 0, Math.floor(block / 4294967296) >>> 0, 0, 0, seed >>> 0, 0, philoxBlock);
  return (philoxBlock[index % 4]! >>> 8) * 2 ** -24;
}
