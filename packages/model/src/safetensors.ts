/**
 * The safetensors format (https://github.com/huggingface/safetensors):
 *
 *   8 bytes   N, unsigned 64-bit little-endian: length of the header
 *   N bytes   UTF-8 JSON object {name: {dtype, shape, data_offsets: [begin, end]}, ...} with an
 *             optional "__metadata__": {string: string}; may be padded with trailing spaces
 *   rest      the byte buffer; data_offsets are relative to its start, little-endian values
 *
 * The reader is strict: every tensor's byte range must be inside the buffer, the ranges must
 * tile the buffer exactly (contiguous, no overlap, no gaps, nothing left over), and
 * shape × dtype size must equal the range length. Floating dtypes (F64, F32, F16, BF16) are
 * decoded to float32; I32 to Int32Array; I64 to BigInt64Array (e.g. num_batches_tracked).
 */
import {
  closeSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';

/** Header lengths above this are rejected (the reference implementation's limit). */
export const SAFETENSORS_MAX_HEADER_BYTES = 100_000_000;

/** Byte size of every dtype the format defines (used for validation). */
const DTYPE_BYTES: Record<string, number> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8,
};

/** Dtypes this module can decode and encode. */
export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32';
export const SAFETENSORS_DTYPES: readonly SafetensorsDtype[] = [
  'F64',
  'F32',
  'F16',
  'BF16',
  'I64',
  'I32',
];

export interface SafetensorsTensor {
  /** Dtype as stored in the file. */
  dtype: SafetensorsDtype;
  shape: number[];
  /** Float dtypes decoded to float32; I32 → Int32Array; I64 → BigInt64Array. */
  data: Float32Array | Int32Array | BigInt64Array;
}

export interface SafetensorsFile {
  /** Tensors in file-header order. */
  tensors: Map<string, SafetensorsTensor>;
  metadata: Record<string, string>;
}

/** What the writer accepts: data is converted to `dtype` (float data rounded to nearest even for F16/BF16). */
export interface SafetensorsInput {
  dtype: SafetensorsDtype;
  shape: readonly number[];
  data: ArrayLike<number> | BigInt64Array;
}

export class SafetensorsError extends Error {}

// ---- float16 / bfloat16 conversion ----

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // zero / subnormal
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** float32 → float16 bits, round to nearest even, overflow → ±Inf, NaN preserved. */
export function f32ToF16(v: number): number {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // underflow to ±0
    mant |= 0x800000; // implicit bit
    const shift = 14 - e; // 14..24
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let m = mant >>> shift;
    if (rest > half || (rest === half && m & 1)) m++;
    return sign | m; // a carry into the exponent field gives the smallest normal, as it should
  }
  let m = mant >>> 13;
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && m & 1)) {
    m++;
    if (m === 0x400) {
      m = 0;
      e++;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | m;
}

export function bf16ToF32(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0];
}

/** float32 → bfloat16 bits, round to nearest even, NaN preserved. */
export function f32ToBf16(v: number): number {
  f32[0] = v;
  const x = u32[0];
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return ((x >>> 16) | 0x40) & 0xffff;
  const r = x + 0x7fff + ((x >>> 16) & 1);
  return (r >>> 16) & 0xffff;
}

// ---- reader ----

function fail(source: string, msg: string): never {
  throw new SafetensorsError(`${source}: invalid safetensors file: ${msg}`);
}

function describe(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** Parses and validates a safetensors byte buffer. `source` names the file in error messages. */
export function parseSafetensors(bytes: Uint8Array, source = '<buffer>'): SafetensorsFile {
  if (bytes.length < 8)
    fail(source, `${bytes.length} bytes is too short for the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(SAFETENSORS_MAX_HEADER_BYTES)) {
    fail(source, `header length ${n} exceeds the limit of ${SAFETENSORS_MAX_HEADER_BYTES} bytes`);
  }
  const headerLen = Number(n);
  if (headerLen < 2) fail(source, `header length ${headerLen} is too small for a JSON object`);
  if (8 + headerLen > bytes.length) {
    fail(
      source,
      `header length ${headerLen} runs past the end of the file (${bytes.length} bytes)`,
    );
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLen));
  } catch {
    fail(source, 'header is not valid UTF-8');
  }
  if (!text.startsWith('{'))
    fail(source, `header does not start with '{' (bad header length ${headerLen}?)`);
  let header: unknown;
  try {
    header = JSON.parse(text.trimEnd());
  } catch (e) {
    fail(source, `header is not valid JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header))
    fail(source, 'header is not a JSON object');

  const dataStart = 8 + headerLen;
  const bufferLen = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: string; shape: number[]; begin: number; end: number }[] =
    [];

  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
        fail(source, '__metadata__ is not an object');
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string')
          fail(source, `__metadata__ value for '${k}' is not a string: ${describe(v)}`);
        metadata[k] = v;
      }
      continue;
    }
    const where = `tensor '${name}'`;
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
      fail(source, `${where}: entry is not an object`);
    const info = raw as Record<string, unknown>;
    for (const key of Object.keys(info)) {
      if (key !== 'dtype' && key !== 'shape' && key !== 'data_offsets')
        fail(source, `${where}: unknown field '${key}'`);
    }
    const { dtype, shape, data_offsets: offsets } = info;
    if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES))
      fail(source, `${where}: unknown dtype ${describe(dtype)}`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(
        source,
        `${where}: shape must be an array of non-negative integers, got ${describe(shape)}`,
      );
    }
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((d) => Number.isSafeInteger(d) && d >= 0)
    ) {
      fail(
        source,
        `${where}: data_offsets must be [begin, end] non-negative integers, got ${describe(offsets)}`,
      );
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end) fail(source, `${where}: data_offsets [${begin}, ${end}] has begin > end`);
    if (end > bufferLen) {
      fail(
        source,
        `${where}: data_offsets [${begin}, ${end}] out of range (data buffer is ${bufferLen} bytes)`,
      );
    }
    const elements = (shape as number[]).reduce((a, b) => a * b, 1);
    const expected = elements * DTYPE_BYTES[dtype];
    if (expected !== end - begin) {
      fail(
        source,
        `${where}: shape [${(shape as number[]).join(', ')}] × ${dtype} (${DTYPE_BYTES[dtype]} bytes) needs ${expected} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`,
      );
    }
    entries.push({ name, dtype, shape: shape as number[], begin, end });
  }

  // The ranges must tile [0, bufferLen) exactly.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  for (const e of sorted) {
    if (e.begin < pos)
      fail(
        source,
        `tensor '${e.name}': data_offsets [${e.begin}, ${e.end}] overlap the previous tensor (which ends at ${pos})`,
      );
    if (e.begin > pos)
      fail(
        source,
        `tensor '${e.name}': data_offsets [${e.begin}, ${e.end}] leave a gap after byte ${pos} (offsets must be contiguous)`,
      );
    pos = e.end;
  }
  if (pos !== bufferLen)
    fail(
      source,
      `tensor data covers ${pos} bytes but the data buffer has ${bufferLen} (trailing bytes)`,
    );

  const tensors = new Map<string, SafetensorsTensor>();
  for (const e of entries) {
    if (!(SAFETENSORS_DTYPES as readonly string[]).includes(e.dtype)) {
      throw new SafetensorsError(
        `${source}: tensor '${e.name}' has dtype ${e.dtype}, which is not supported (supported: ${SAFETENSORS_DTYPES.join(', ')})`,
      );
    }
    const dtype = e.dtype as SafetensorsDtype;
    const dv = new DataView(bytes.buffer, bytes.byteOffset + dataStart + e.begin, e.end - e.begin);
    const size = (e.end - e.begin) / DTYPE_BYTES[dtype];
    let data: SafetensorsTensor['data'];
    switch (dtype) {
      case 'F32': {
        const a = new Float32Array(size);
        for (let i = 0; i < size; i++) a[i] = dv.getFloat32(4 * i, true);
        data = a;
        break;
      }
      case 'F64': {
        const a = new Float32Array(size);
        for (let i = 0; i < size; i++) a[i] = dv.getFloat64(8 * i, true);
        data = a;
        break;
      }
      case 'F16': {
        const a = new Float32Array(size);
        for (let i = 0; i < size; i++) a[i] = f16ToF32(dv.getUint16(2 * i, true));
        data = a;
        break;
      }
      case 'BF16': {
        const a = new Float32Array(size);
        for (let i = 0; i < size; i++) a[i] = bf16ToF32(dv.getUint16(2 * i, true));
        data = a;
        break;
      }
      case 'I32': {
        const a = new Int32Array(size);
        for (let i = 0; i < size; i++) a[i] = dv.getInt32(4 * i, true);
        data = a;
        break;
      }
      case 'I64': {
        const a = new BigInt64Array(size);
        for (let i = 0; i < size; i++) a[i] = dv.getBigInt64(8 * i, true);
        data = a;
        break;
      }
    }
    tensors.set(e.name, { dtype, shape: e.shape, data });
  }
  return { tensors, metadata };
}

/** Reads and validates a .safetensors file; errors name the file and the tensor. */
export function readSafetensors(file: string): SafetensorsFile {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new SafetensorsError(`${file}: cannot read safetensors file: ${(e as Error).message}`);
  }
  return parseSafetensors(bytes, file);
}

// ---- writer ----

/** Encodes tensors (in the given order) as a safetensors byte buffer. */
export function encodeSafetensors(
  tensors: Iterable<[string, SafetensorsInput]> | Record<string, SafetensorsInput>,
  metadata?: Record<string, string>,
): Uint8Array {
  const list: [string, SafetensorsInput][] =
    Symbol.iterator in tensors
      ? [...(tensors as Iterable<[string, SafetensorsInput]>)]
      : Object.entries(tensors as Record<string, SafetensorsInput>);
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of list) {
    if (name === '__metadata__')
      throw new SafetensorsError(`tensor name '__metadata__' is reserved`);
    if (name in header) throw new SafetensorsError(`duplicate tensor name '${name}'`);
    if (!(SAFETENSORS_DTYPES as readonly string[]).includes(t.dtype)) {
      throw new SafetensorsError(
        `tensor '${name}': unsupported dtype ${String(t.dtype)} (supported: ${SAFETENSORS_DTYPES.join(', ')})`,
      );
    }
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) {
      throw new SafetensorsError(
        `tensor '${name}': shape [${t.shape.join(', ')}] has ${n} elements but data has ${t.data.length}`,
      );
    }
    const len = n * DTYPE_BYTES[t.dtype];
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + len] };
    offset += len;
  }
  let json = JSON.stringify(header);
  let headerBytes = new TextEncoder().encode(json);
  const pad = (8 - (headerBytes.length % 8)) % 8; // keep the data 8-byte aligned
  if (pad) {
    json += ' '.repeat(pad);
    headerBytes = new TextEncoder().encode(json);
  }
  const out = new Uint8Array(8 + headerBytes.length + offset);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.length;
  for (const [, t] of list) {
    const n = t.data.length;
    const isBig = t.data instanceof BigInt64Array;
    const num = (i: number): number =>
      isBig ? Number((t.data as BigInt64Array)[i]) : (t.data as ArrayLike<number>)[i];
    switch (t.dtype) {
      case 'F32':
        for (let i = 0; i < n; i++, pos += 4) dv.setFloat32(pos, num(i), true);
        break;
      case 'F64':
        for (let i = 0; i < n; i++, pos += 8) dv.setFloat64(pos, num(i), true);
        break;
      case 'F16':
        for (let i = 0; i < n; i++, pos += 2) dv.setUint16(pos, f32ToF16(num(i)), true);
        break;
      case 'BF16':
        for (let i = 0; i < n; i++, pos += 2) dv.setUint16(pos, f32ToBf16(num(i)), true);
        break;
      case 'I32':
        for (let i = 0; i < n; i++, pos += 4) dv.setInt32(pos, num(i), true);
        break;
      case 'I64':
        for (let i = 0; i < n; i++, pos += 8) {
          dv.setBigInt64(
            pos,
            isBig ? (t.data as BigInt64Array)[i] : BigInt(Math.trunc(num(i))),
            true,
          );
        }
        break;
    }
  }
  return out;
}

/**
 * Writes a safetensors file atomically: the bytes go to a temporary file in the same
 * directory, which is fsynced and then renamed over `file` (readers never see a partial file).
 */
export function writeSafetensors(
  file: string,
  tensors: Iterable<[string, SafetensorsInput]> | Record<string, SafetensorsInput>,
  metadata?: Record<string, string>,
): void {
  const bytes = encodeSafetensors(tensors, metadata);
  const tmp = path.join(
    path.dirname(file),
    `.${path.basename(file)}.tmp-${process.pid}-${Date.now().toString(36)}`,
  );
  let fd: number | null = null;
  try {
    fd = openSync(tmp, 'w');
    let written = 0;
    while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
    fsyncSync(fd);
    closeSync(fd);
    fd = null;
    renameSync(tmp, file);
  } catch (e) {
    if (fd !== null) closeSync(fd);
    rmSync(tmp, { force: true });
    throw new SafetensorsError(`${file}: cannot write safetensors file: ${(e as Error).message}`);
  }
}
