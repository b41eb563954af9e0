import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { DatasetError } from '../errors.js';

/**
 * The IDX format (LeCun's MNIST files): a 4-byte big-endian magic 0x0000TTDD (TT = element
 * type, 0x08 = unsigned byte; DD = number of dimensions), DD big-endian u32 sizes, then the
 * elements row-major. Only the unsigned-byte type is supported.
 */
export interface IdxArray {
  readonly dims: readonly number[];
  /** Elements, a view into the decompressed file (no header). */
  readonly data: Uint8Array;
}

const IDX_TYPE_U8 = 0x08;

/** Read a gzip-compressed IDX file of unsigned bytes with exactly `ndims` dimensions. */
export function readGzipIdxU8(
  path: string,
  ndims: number,
  options: { maxDecompressedBytes: number; what: string; hint?: string },
): IdxArray {
  const { what } = options;
  const hint = options.hint ? ` ${options.hint}` : '';
  let compressed: Buffer;
  try {
    compressed = readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOENT' ? 'does not exist' : `cannot be read (${(error as Error).message})`;
    throw new DatasetError(`The ${what} file ${path} ${reason}.${hint}`);
  }
  let bytes: Buffer;
  try {
    bytes = gunzipSync(compressed, { maxOutputLength: options.maxDecompressedBytes });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ERR_BUFFER_TOO_LARGE' || error instanceof RangeError) {
      throw new DatasetError(
        `The ${what} file ${path} decompresses to more than ${options.maxDecompressedBytes} bytes, far larger than this dataset; it is the wrong file or corrupt — replace it with the original download.`,
      );
    }
    throw new DatasetError(
      `The ${what} file ${path} is not a valid gzip file (${(error as Error).message}); replace it with the original download.`,
    );
  }
  return parseIdxU8(bytes, ndims, path, what);
}

/** Parse decompressed IDX bytes; every structural problem is an error naming `path`. */
export function parseIdxU8(bytes: Uint8Array, ndims: number, path: string, what: string): IdxArray {
  const expectedMagic = (IDX_TYPE_U8 << 8) | ndims;
  const hex = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;
  const fix = 'replace it with the original download';
  if (bytes.length < 4) {
    throw new DatasetError(
      `The ${what} file ${path} holds only ${bytes.length} bytes after decompression, too short for an IDX header; ${fix}.`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, false);
  if (magic !== expectedMagic) {
    throw new DatasetError(
      `The ${what} file ${path} starts with magic number ${hex(magic)}, but an IDX file of unsigned bytes with ${ndims} dimension(s) starts with ${hex(expectedMagic)}; it is not the right file or it is corrupt — ${fix}.`,
    );
  }
  const headerBytes = 4 + 4 * ndims;
  if (bytes.length < headerBytes) {
    throw new DatasetError(
      `The ${what} file ${path} ends inside its IDX header (${bytes.length} of ${headerBytes} bytes); it is truncated — ${fix}.`,
    );
  }
  const dims: number[] = [];
  for (let d = 0; d < ndims; d++) dims.push(view.getUint32(4 + 4 * d, false));
  const elements = dims.reduce((a, b) => a * b, 1);
  const expectedBytes = headerBytes + elements;
  if (bytes.length < expectedBytes) {
    throw new DatasetError(
      `The ${what} file ${path} is truncated: its header declares dimensions ${dims.join('×')} (${expectedBytes} bytes with header) but it holds only ${bytes.length} bytes — ${fix}.`,
    );
  }
  if (bytes.length > expectedBytes) {
    throw new DatasetError(
      `The ${what} file ${path} has ${bytes.length - expectedBytes} extra bytes after the ${dims.join('×')} elements its header declares; it is corrupt or not an IDX file — ${fix}.`,
    );
  }
  return { dims, data: bytes.subarray(headerBytes) };
}
