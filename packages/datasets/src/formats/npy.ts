/**
 * The numpy `.npy` array format (versions 1.0–3.0): magic `\x93NUMPY`, version bytes, a
 * little-endian header length (u16 in 1.0, u32 in 2.0/3.0), then a Python dict literal
 * `{'descr': '<i8', 'fortran_order': False, 'shape': (N, 3072), }` padded to a multiple of
 * 64 bytes, then the elements. Only plain integer/float dtypes in C order are accepted.
 */
import { DatasetError } from '../errors.js';
import type { NumpyDtype, NumpyKind } from './pickle.js';

export interface NpyHeader {
  readonly dtype: NumpyDtype;
  readonly shape: readonly number[];
  /** Bytes before the first element. */
  readonly dataOffset: number;
  /** Total element bytes. */
  readonly dataBytes: number;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** Bytes needed to know the header length (magic, version, length field). */
export const NPY_PREAMBLE_BYTES = 12;

/** Header length from the preamble, so a stream reader knows how much to read. */
export function npyHeaderLength(preamble: Uint8Array, what: string): number {
  const fail = (why: string): never => {
    throw new DatasetError(`${what} is not a numpy .npy array: ${why}.`);
  };
  if (preamble.length < 10 || MAGIC.some((b, i) => preamble[i] !== b))
    fail('it does not start with \\x93NUMPY');
  const major = preamble[6];
  if (major === 1) return 10 + (preamble[8] | (preamble[9] << 8));
  if (major === 2 || major === 3) {
    if (preamble.length < 12) fail('its header is cut short');
    return (
      12 + (preamble[8] | (preamble[9] << 8) | (preamble[10] << 16)) + preamble[11] * 0x1000000
    );
  }
  return fail(`format version ${major}.${preamble[7]} is not 1.0–3.0`);
}

/** Parse the full header (`npyHeaderLength` bytes). */
export function parseNpyHeader(bytes: Uint8Array, what: string): NpyHeader {
  const fail = (why: string): never => {
    throw new DatasetError(`${what} has an unreadable .npy header: ${why}.`);
  };
  const dataOffset = npyHeaderLength(bytes, what);
  if (dataOffset > 1 << 20) fail(`it declares a ${dataOffset}-byte header`);
  if (bytes.length < dataOffset) fail('it is cut short');
  const start = bytes[6] === 1 ? 10 : 12;
  const text = Buffer.from(bytes.buffer, bytes.byteOffset + start, dataOffset - start).toString(
    bytes[6] === 3 ? 'utf8' : 'latin1',
  );
  const descr = /['"]descr['"]\s*:\s*['"]([<>|=])([uifb])(\d+)['"]/.exec(text);
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(text);
  const shapeMatch = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(text);
  if (!descr) fail(`its dtype is not a plain number type (header ${JSON.stringify(text.trim())})`);
  if (!fortran || !shapeMatch)
    fail(`it lacks fortran_order or shape (header ${JSON.stringify(text.trim())})`);
  const [, order, kind, sizeText] = descr as RegExpExecArray;
  const itemSize = Number(sizeText);
  if (![1, 2, 4, 8].includes(itemSize)) fail(`item size ${itemSize} is not supported`);
  const shape = (shapeMatch as RegExpExecArray)[1]
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => {
      const n = Number(s.replace(/L$/, ''));
      if (!Number.isSafeInteger(n) || n < 0) fail(`shape entry '${s}' is not a size`);
      return n;
    });
  if ((fortran as RegExpExecArray)[1] === 'True' && shape.filter((d) => d > 1).length > 1) {
    fail('it is stored in Fortran order; only C order is accepted');
  }
  const littleEndian =
    order === '<' ||
    order === '|' ||
    (order === '=' && new Uint8Array(new Uint16Array([1]).buffer)[0] === 1);
  const elements = shape.reduce((a, b) => a * b, 1);
  return {
    dtype: { kind: kind as NumpyKind, itemSize, littleEndian },
    shape,
    dataOffset,
    dataBytes: elements * itemSize,
  };
}

/** Elements of an integer array (any shape, C order) as JS numbers. */
export function npyIntegers(header: NpyHeader, data: Uint8Array, what: string): number[] {
  const { kind, itemSize, littleEndian } = header.dtype;
  if (kind === 'f') throw new DatasetError(`${what} holds floats, not integer labels.`);
  if (data.length !== header.dataBytes) {
    throw new DatasetError(
      `${what} holds ${data.length} element bytes but its header (shape ${header.shape.join('×')}) needs ${header.dataBytes}; it is truncated.`,
    );
  }
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const n = data.length / itemSize;
  const out = new Array<number>(n);
  const signed = kind === 'i';
  for (let i = 0; i < n; i++) {
    const o = i * itemSize;
    if (itemSize === 1) out[i] = signed ? view.getInt8(o) : view.getUint8(o);
    else if (itemSize === 2)
      out[i] = signed ? view.getInt16(o, littleEndian) : view.getUint16(o, littleEndian);
    else if (itemSize === 4)
      out[i] = signed ? view.getInt32(o, littleEndian) : view.getUint32(o, littleEndian);
    else {
      const v = signed ? view.getBigInt64(o, littleEndian) : view.getBigUint64(o, littleEndian);
      if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
        throw new DatasetError(`${what} element ${i} is ${v}, not a plausible label.`);
      }
      out[i] = Number(v);
    }
  }
  return out;
}
