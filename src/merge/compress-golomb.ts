/**
 * Bit streams and Golomb-Rice codes for ComPEFT's sparse positions (docs/formats.md, "ComPEFT").
 * Bits are packed most-significant-bit first within each byte. A non-negative integer x is coded
 * with Rice parameter b (Golomb modulus 2^b) as q = floor(x / 2^b) one-bits, a zero-bit, then the
 * b low bits of x, most significant first.
 */
import { FormatError } from '../errors.ts';

/** Appends bits to a growing byte buffer. */
export class BitWriter {
  private bytes = new Uint8Array(1024);
  private bitLength = 0;

  /** Bits written so far. */
  get length(): number {
    return this.bitLength;
  }

  private ensure(bits: number): void {
    const needed = Math.ceil((this.bitLength + bits) / 8);
    if (needed <= this.bytes.length) return;
    let size = this.bytes.length * 2;
    while (size < needed) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.bytes);
    this.bytes = grown;
  }

  /** Append one bit (0 or 1). */
  bit(value: number): void {
    this.ensure(1);
    if (value) this.bytes[this.bitLength >>> 3]! |= 0x80 >>> (this.bitLength & 7);
    this.bitLength++;
  }

  /** Append `count` one-bits (the unary part of a Rice code). */
  ones(count: number): void {
    this.ensure(count);
    for (let i = 0; i < count; i++) {
      this.bytes[this.bitLength >>> 3]! |= 0x80 >>> (this.bitLength & 7);
      this.bitLength++;
    }
  }

  /** Append the low `width` bits of `value` (width <= 31), most significant first. */
  bits(value: number, width: number): void {
    for (let i = width - 1; i >= 0; i--) this.bit((value >>> i) & 1);
  }

  /** The written bits, zero-padded to whole bytes (a copy). */
  finish(): Uint8Array {
    return this.bytes.slice(0, Math.ceil(this.bitLength / 8));
  }
}

/** Reads bits from a byte buffer; reading past `bitLength` is a FormatError naming `file`. */
export class BitReader {
  private position = 0;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly bitLength: number,
    private readonly file: string,
    private readonly what: string,
  ) {}

  /** Bits consumed so far. */
  get consumed(): number {
    return this.position;
  }

  /** The next bit. */
  bit(): number {
    if (this.position >= this.bitLength) {
      throw new FormatError(
        this.file,
        `${this.what} ended early after ${this.bitLength} bits (file corrupt or truncated)`,
      );
    }
    const value = (this.bytes[this.position >>> 3]! >>> (7 - (this.position & 7))) & 1;
    this.position++;
    return value;
  }

  /** `width` bits as an unsigned integer (width <= 31). */
  bits(width: number): number {
    let value = 0;
    for (let i = 0; i < width; i++) value = (value << 1) | this.bit();
    return value >>> 0;
  }
}

/** Append x >= 0 with Rice parameter b. */
export function writeRice(writer: BitWriter, x: number, b: number): void {
  const modulus = 2 ** b;
  const q = Math.floor(x / modulus);
  writer.ones(q);
  writer.bit(0);
  if (b > 0) writer.bits(x - q * modulus, b);
}

/** Read one Rice-coded integer with parameter b. */
export function readRice(reader: BitReader, b: number): number {
  let q = 0;
  while (reader.bit() === 1) q++;
  return q * 2 ** b + (b > 0 ? reader.bits(b) : 0);
}

/**
 * The Rice parameter for gaps between kept positions when a fraction `density` (in (0, 1]) of the
 * positions is kept. Gaps are then about geometric with p = density, and the best Golomb-Rice
 * parameter is b = max(0, 1 + floor(log2(log(phi - 1) / log(1 - p)))) with phi the golden ratio
 * (Kiely 2004): b = 0 for p >= 0.38, 2 for p = 0.2, 4 for p = 0.05, 7 for p = 0.005.
 */
export function riceParameterFor(density: number): number {
  if (!(density > 0 && density <= 1))
    throw new RangeError(`riceParameterFor: density ${density} is outside (0, 1]`);
  if (density === 1) return 0;
  const ratio = Math.log((Math.sqrt(5) - 1) / 2) / Math.log(1 - density);
  return Math.min(30, Math.max(0, 1 + Math.floor(Math.log2(ratio))));
}
