import { readFileSync, statSync } from 'node:fs';
import { inflateSync } from 'node:zlib';
import { DatasetError } from '../errors.js';

/**
 * A reader for the subset of MATLAB MAT-file level 5 (the format `save -v6`/`-v7` writes) that
 * dataset annotation files use: numeric, logical and char arrays, cell arrays and struct
 * arrays, stored plainly or inside miCOMPRESSED (zlib) elements, in either byte order.
 * Sparse arrays, objects, function handles and v7.3 (HDF5) files are refused with a sentence.
 *
 * Layout: a 128-byte header (116 bytes of text, 8 bytes subsystem offset, u16 version 0x0100,
 * the two characters "IM" in the file's byte order — "MI" read big-endian), then data elements.
 * A data element is an 8-byte tag (u32 type, u32 byte count) and its data padded to 8 bytes,
 * or a "small" element whose tag holds u16 byte count / u16 type in the first 4 bytes and up
 * to 4 data bytes in the next 4. miMATRIX and miCOMPRESSED elements are not padded.
 */

export type MatValue = MatNumeric | MatChar | MatCell | MatStruct;

interface MatArrayBase {
  readonly name: string;
  /** MATLAB dimensions, at least two (e.g. [1, 196]); data is column-major. */
  readonly dims: readonly number[];
}

export interface MatNumeric extends MatArrayBase {
  readonly kind: 'numeric';
  /** mxDOUBLE, mxUINT8, … or 'logical'. */
  readonly className: string;
  /** The real part, converted to float64 (64-bit integers beyond 2^53 lose precision). */
  readonly data: Float64Array;
}

export interface MatChar extends MatArrayBase {
  readonly kind: 'char';
  /** One string per row (for the usual 1×n char array, a single string). */
  readonly rows: readonly string[];
}

export interface MatCell extends MatArrayBase {
  readonly kind: 'cell';
  /** Cells in column-major order. */
  readonly cells: readonly MatValue[];
}

export interface MatStruct extends MatArrayBase {
  readonly kind: 'struct';
  readonly fieldNames: readonly string[];
  /** Struct elements in column-major order, each a field name → value map. */
  readonly elements: readonly ReadonlyMap<string, MatValue>[];
}

export interface Mat5Limits {
  /** Refuse files larger than this (default 256 MiB; the Cars196 annotation files are < 1 MiB). */
  readonly maxFileBytes?: number;
  /** Refuse a compressed element that inflates beyond this (default 512 MiB). */
  readonly maxDecompressedBytes?: number;
  /** Refuse arrays nested deeper than this (default 16). */
  readonly maxDepth?: number;
}

const HEADER_BYTES = 128;

const MI = {
  INT8: 1,
  UINT8: 2,
  INT16: 3,
  UINT16: 4,
  INT32: 5,
  UINT32: 6,
  SINGLE: 7,
  DOUBLE: 9,
  INT64: 12,
  UINT64: 13,
  MATRIX: 14,
  COMPRESSED: 15,
  UTF8: 16,
  UTF16: 17,
  UTF32: 18,
} as const;

const ELEMENT_BYTES: Record<number, number> = {
  [MI.INT8]: 1,
  [MI.UINT8]: 1,
  [MI.INT16]: 2,
  [MI.UINT16]: 2,
  [MI.INT32]: 4,
  [MI.UINT32]: 4,
  [MI.SINGLE]: 4,
  [MI.DOUBLE]: 8,
  [MI.INT64]: 8,
  [MI.UINT64]: 8,
  [MI.UTF8]: 1,
  [MI.UTF16]: 2,
  [MI.UTF32]: 4,
};

const MX = {
  CELL: 1,
  STRUCT: 2,
  OBJECT: 3,
  CHAR: 4,
  SPARSE: 5,
  DOUBLE: 6,
  SINGLE: 7,
  INT8: 8,
  UINT8: 9,
  INT16: 10,
  UINT16: 11,
  INT32: 12,
  UINT32: 13,
  INT64: 14,
  UINT64: 15,
} as const;

const NUMERIC_CLASS_NAMES: Record<number, string> = {
  [MX.DOUBLE]: 'double',
  [MX.SINGLE]: 'single',
  [MX.INT8]: 'int8',
  [MX.UINT8]: 'uint8',
  [MX.INT16]: 'int16',
  [MX.UINT16]: 'uint16',
  [MX.INT32]: 'int32',
  [MX.UINT32]: 'uint32',
  [MX.INT64]: 'int64',
  [MX.UINT64]: 'uint64',
};

const FLAG_LOGICAL = 0x02;
const FLAG_COMPLEX = 0x08;

/** Read every top-level variable of a MAT v5 file. */
export function readMat5File(path: string, limits: Mat5Limits = {}): Map<string, MatValue> {
  const maxFileBytes = limits.maxFileBytes ?? 256 * 1024 * 1024;
  let size: number;
  try {
    size = statSync(path).size;
  } catch (error) {
    throw new DatasetError(
      `MAT file ${path} does not exist or cannot be read (${(error as Error).message}).`,
    );
  }
  if (size > maxFileBytes) {
    throw new DatasetError(
      `MAT file ${path} is ${size} bytes, more than the ${maxFileBytes}-byte limit for annotation files; it is not the file expected here.`,
    );
  }
  return readMat5(readFileSync(path), path, limits);
}

/** Parse MAT v5 bytes; `file` names the source in error messages. */
export function readMat5(
  bytes: Uint8Array,
  file: string,
  limits: Mat5Limits = {},
): Map<string, MatValue> {
  const reader = new Mat5Reader(file, limits);
  return reader.readFile(bytes);
}

/** A struct field that must exist, with a sentence naming the file when it does not. */
export function matField(value: MatStruct, element: number, field: string, file: string): MatValue {
  const found = value.elements[element]?.get(field);
  if (!found) {
    throw new DatasetError(
      `MAT file ${file}: struct '${value.name}' element ${element + 1} has no field '${field}' (fields: ${value.fieldNames.join(', ')}).`,
    );
  }
  return found;
}

/** The single string of a char array (rows joined by newlines), trimmed of trailing padding. */
export function matString(value: MatValue, what: string, file: string): string {
  if (value.kind === 'char') return value.rows.map((r) => r.replace(/[\s\0]+$/, '')).join('\n');
  throw new DatasetError(
    `MAT file ${file}: ${what} should be a char array but is a ${describe(value)}.`,
  );
}

/** The single number of a numeric scalar. */
export function matScalar(value: MatValue, what: string, file: string): number {
  if (value.kind === 'numeric' && value.data.length === 1) return value.data[0];
  throw new DatasetError(
    `MAT file ${file}: ${what} should be a numeric scalar but is a ${describe(value)}.`,
  );
}

export function describe(value: MatValue): string {
  const dims = value.dims.join('×');
  return value.kind === 'numeric'
    ? `${dims} ${value.className} array`
    : `${dims} ${value.kind} array`;
}

class Mat5Reader {
  private littleEndian = true;
  private readonly maxDecompressedBytes: number;
  private readonly maxDepth: number;

  constructor(
    private readonly file: string,
    limits: Mat5Limits,
  ) {
    this.maxDecompressedBytes = limits.maxDecompressedBytes ?? 512 * 1024 * 1024;
    this.maxDepth = limits.maxDepth ?? 16;
  }

  private fail(what: string): never {
    throw new DatasetError(`MAT file ${this.file} is not a readable MATLAB v5 file: ${what}.`);
  }

  readFile(bytes: Uint8Array): Map<string, MatValue> {
    if (bytes.length < HEADER_BYTES)
      this.fail(`it is ${bytes.length} bytes, shorter than the 128-byte header`);
    const text = Buffer.from(bytes.subarray(0, 116)).toString('latin1');
    if (
      text.startsWith('MATLAB 7.3') ||
      Buffer.from(bytes.subarray(0, 8)).toString('latin1') === '\x89HDF\r\n\x1a\n'
    ) {
      throw new DatasetError(
        `MAT file ${this.file} is a MATLAB v7.3 (HDF5) file; only v5/v6/v7 MAT files are supported — re-save it in MATLAB with save(..., '-v7').`,
      );
    }
    const endian = String.fromCharCode(bytes[126], bytes[127]);
    if (endian === 'IM') this.littleEndian = true;
    else if (endian === 'MI') this.littleEndian = false;
    else this.fail(`the header's endian indicator is ${JSON.stringify(endian)}, not "IM" or "MI"`);
    const view = viewOf(bytes);
    const version = view.getUint16(124, this.littleEndian);
    if (version !== 0x0100)
      this.fail(`the header's version is 0x${version.toString(16)}, not 0x0100`);

    const out = new Map<string, MatValue>();
    let offset = HEADER_BYTES;
    while (offset < bytes.length) {
      if (bytes.length - offset < 8) {
        // Trailing padding shorter than a tag.
        if (bytes.subarray(offset).every((b) => b === 0)) break;
        this.fail(`${bytes.length - offset} stray bytes at offset ${offset}`);
      }
      const tag = this.tag(view, offset, bytes.length);
      if (tag.type === MI.COMPRESSED) {
        const inflated = this.inflate(
          bytes.subarray(tag.dataStart, tag.dataStart + tag.size),
          offset,
        );
        const inner = viewOf(inflated);
        const innerTag = this.tag(inner, 0, inflated.length);
        if (innerTag.type !== MI.MATRIX)
          this.fail(`the compressed element at offset ${offset} does not hold an array`);
        const value = this.matrix(inflated, inner, innerTag.dataStart, innerTag.size, 0);
        out.set(value.name, value);
        offset = tag.dataStart + tag.size;
      } else if (tag.type === MI.MATRIX) {
        const value = this.matrix(bytes, view, tag.dataStart, tag.size, 0);
        out.set(value.name, value);
        offset = tag.dataStart + tag.size;
      } else {
        this.fail(
          `a top-level element of type ${tag.type} at offset ${offset}; only arrays may appear there`,
        );
      }
    }
    return out;
  }

  private inflate(data: Uint8Array, offset: number): Uint8Array {
    try {
      return inflateSync(data, { maxOutputLength: this.maxDecompressedBytes });
    } catch (error) {
      if (
        error instanceof RangeError ||
        (error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE'
      ) {
        throw new DatasetError(
          `MAT file ${this.file}: the compressed element at offset ${offset} inflates beyond ${this.maxDecompressedBytes} bytes; refusing it (the file is not an annotation file, or is hostile).`,
        );
      }
      this.fail(
        `the compressed element at offset ${offset} is not valid zlib data (${(error as Error).message})`,
      );
    }
  }

  /** Decode a tag at `offset`; `end` bounds the enclosing buffer or element. */
  private tag(
    view: DataView,
    offset: number,
    end: number,
  ): { type: number; size: number; dataStart: number; next: number } {
    if (offset + 8 > end)
      this.fail(`a data element tag at offset ${offset} runs past the end of its container`);
    const first = view.getUint32(offset, this.littleEndian);
    const smallSize = first >>> 16;
    if (smallSize !== 0) {
      // Small data element: u16 size and u16 type packed in the first word, data in the second.
      const type = first & 0xffff;
      if (smallSize > 4)
        this.fail(
          `a small data element at offset ${offset} claims ${smallSize} bytes (at most 4 fit)`,
        );
      return { type, size: smallSize, dataStart: offset + 4, next: offset + 8 };
    }
    const type = first;
    const size = view.getUint32(offset + 4, this.littleEndian);
    const dataStart = offset + 8;
    if (dataStart + size > end) {
      this.fail(
        `the element at offset ${offset} claims ${size} bytes but only ${end - dataStart} remain (truncated file?)`,
      );
    }
    const padded = type === MI.MATRIX || type === MI.COMPRESSED ? size : Math.ceil(size / 8) * 8;
    return { type, size, dataStart, next: Math.min(dataStart + padded, end) };
  }

  /** A typed sub-element (flags, dims, name, data); returns the raw bytes and type. */
  private subElement(
    view: DataView,
    offset: number,
    end: number,
  ): { type: number; bytes: Uint8Array; next: number } {
    const t = this.tag(view, offset, end);
    const bytes = new Uint8Array(view.buffer, view.byteOffset + t.dataStart, t.size);
    return { type: t.type, bytes, next: t.next };
  }

  private matrix(
    bytes: Uint8Array,
    view: DataView,
    start: number,
    size: number,
    depth: number,
  ): MatValue {
    if (depth > this.maxDepth) this.fail(`arrays nest deeper than ${this.maxDepth} levels`);
    // An empty miMATRIX (0 bytes) is how MATLAB writes an empty cell element.
    if (size === 0)
      return {
        kind: 'numeric',
        name: '',
        dims: [0, 0],
        className: 'double',
        data: new Float64Array(0),
      };
    const end = start + size;
    const flagsEl = this.subElement(view, start, end);
    if (flagsEl.type !== MI.UINT32 || flagsEl.bytes.length < 8)
      this.fail(`an array at offset ${start} lacks its array-flags element`);
    const flagsWord = viewOf(flagsEl.bytes).getUint32(0, this.littleEndian);
    const mxClass = flagsWord & 0xff;
    const flags = (flagsWord >>> 8) & 0xff;

    const dimsEl = this.subElement(view, flagsEl.next, end);
    if (dimsEl.type !== MI.INT32)
      this.fail(`an array at offset ${start} has dimensions of type ${dimsEl.type}, not miINT32`);
    const dims = Array.from(this.numbers(dimsEl.type, dimsEl.bytes));
    if (dims.length < 2 || dims.some((d) => !Number.isInteger(d) || d < 0)) {
      this.fail(`an array at offset ${start} has dimensions [${dims.join(', ')}]`);
    }
    const count = dims.reduce((a, b) => a * b, 1);
    if (count > bytes.length * 8) {
      // Each element needs at least a bit (logical) — more than that cannot fit in the buffer.
      this.fail(
        `an array at offset ${start} claims ${count} elements, more than its file could hold`,
      );
    }

    const nameEl = this.subElement(view, dimsEl.next, end);
    if (nameEl.type !== MI.INT8 && nameEl.type !== MI.UINT8)
      this.fail(`an array at offset ${start} has a name of type ${nameEl.type}`);
    const name = Buffer.from(nameEl.bytes).toString('latin1');
    let offset = nameEl.next;

    if (mxClass === MX.CELL) {
      const cells: MatValue[] = [];
      for (let i = 0; i < count; i++) {
        const t = this.tag(view, offset, end);
        if (t.type !== MI.MATRIX)
          this.fail(`cell ${i + 1} of '${name}' is an element of type ${t.type}, not an array`);
        cells.push(this.matrix(bytes, view, t.dataStart, t.size, depth + 1));
        offset = t.next;
      }
      return { kind: 'cell', name, dims, cells };
    }

    if (mxClass === MX.STRUCT || mxClass === MX.OBJECT) {
      if (mxClass === MX.OBJECT)
        this.fail(`'${name}' is a MATLAB object, which this reader does not support`);
      const lenEl = this.subElement(view, offset, end);
      const fieldNameLength = this.numbers(lenEl.type, lenEl.bytes)[0];
      if (!Number.isInteger(fieldNameLength) || fieldNameLength <= 0 || fieldNameLength > 4096) {
        this.fail(`struct '${name}' has field-name length ${fieldNameLength}`);
      }
      const namesEl = this.subElement(view, lenEl.next, end);
      const fieldCount = namesEl.bytes.length / fieldNameLength;
      if (!Number.isInteger(fieldCount))
        this.fail(`struct '${name}' field names do not fill whole ${fieldNameLength}-byte slots`);
      const fieldNames: string[] = [];
      for (let f = 0; f < fieldCount; f++) {
        const raw = Buffer.from(
          namesEl.bytes.subarray(f * fieldNameLength, (f + 1) * fieldNameLength),
        ).toString('latin1');
        fieldNames.push(raw.replace(/\0.*$/s, ''));
      }
      offset = namesEl.next;
      const elements: Map<string, MatValue>[] = [];
      for (let i = 0; i < count; i++) {
        const element = new Map<string, MatValue>();
        for (const field of fieldNames) {
          const t = this.tag(view, offset, end);
          if (t.type !== MI.MATRIX)
            this.fail(
              `field '${field}' of '${name}'(${i + 1}) is an element of type ${t.type}, not an array`,
            );
          element.set(field, this.matrix(bytes, view, t.dataStart, t.size, depth + 1));
          offset = t.next;
        }
        elements.push(element);
      }
      return { kind: 'struct', name, dims, fieldNames, elements };
    }

    if (mxClass === MX.CHAR) {
      const dataEl = this.subElement(view, offset, end);
      const codes = this.charCodes(dataEl.type, dataEl.bytes);
      if (codes.length !== count)
        this.fail(
          `char array '${name}' has ${codes.length} characters for dimensions ${dims.join('×')}`,
        );
      // Column-major: row r is codes[r], codes[r + rows], …
      const nRows = dims[0];
      const nCols = count / Math.max(nRows, 1);
      const rows: string[] = [];
      for (let r = 0; r < nRows; r++) {
        let s = '';
        for (let c = 0; c < nCols; c++) s += String.fromCodePoint(codes[c * nRows + r]);
        rows.push(s);
      }
      return { kind: 'char', name, dims, rows };
    }

    const className = NUMERIC_CLASS_NAMES[mxClass];
    if (!className) {
      this.fail(
        `'${name}' has array class ${mxClass}${mxClass === MX.SPARSE ? ' (sparse)' : ''}, which this reader does not support`,
      );
    }
    if (flags & FLAG_COMPLEX) this.fail(`'${name}' is complex, which annotation files never are`);
    const dataEl = this.subElement(view, offset, end);
    const data = this.numbers(dataEl.type, dataEl.bytes);
    if (data.length !== count)
      this.fail(
        `numeric array '${name}' has ${data.length} values for dimensions ${dims.join('×')}`,
      );
    return {
      kind: 'numeric',
      name,
      dims,
      className: flags & FLAG_LOGICAL ? 'logical' : className,
      data,
    };
  }

  /** Numeric sub-element data as float64, honouring the file's byte order. */
  private numbers(type: number, bytes: Uint8Array): Float64Array {
    const width = ELEMENT_BYTES[type];
    if (!width || type === MI.UTF8 || type === MI.UTF16 || type === MI.UTF32)
      this.fail(`numeric data of element type ${type}`);
    if (bytes.length % width !== 0)
      this.fail(
        `${bytes.length} bytes of element type ${type} do not make whole ${width}-byte values`,
      );
    const n = bytes.length / width;
    const v = viewOf(bytes);
    const le = this.littleEndian;
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const o = i * width;
      switch (type) {
        case MI.INT8:
          out[i] = v.getInt8(o);
          break;
        case MI.UINT8:
          out[i] = v.getUint8(o);
          break;
        case MI.INT16:
          out[i] = v.getInt16(o, le);
          break;
        case MI.UINT16:
          out[i] = v.getUint16(o, le);
          break;
        case MI.INT32:
          out[i] = v.getInt32(o, le);
          break;
        case MI.UINT32:
          out[i] = v.getUint32(o, le);
          break;
        case MI.SINGLE:
          out[i] = v.getFloat32(o, le);
          break;
        case MI.DOUBLE:
          out[i] = v.getFloat64(o, le);
          break;
        case MI.INT64:
          out[i] = Number(v.getBigInt64(o, le));
          break;
        case MI.UINT64:
          out[i] = Number(v.getBigUint64(o, le));
          break;
      }
    }
    return out;
  }

  /** Character data: MATLAB writes miUINT16 (UTF-16 code units), some writers miUTF8 or miUINT8. */
  private charCodes(type: number, bytes: Uint8Array): number[] {
    if (type === MI.UTF8)
      return Array.from(Buffer.from(bytes).toString('utf8'), (ch) => ch.codePointAt(0)!);
    if (type === MI.UINT8 || type === MI.INT8) return Array.from(bytes);
    if (type === MI.UINT16 || type === MI.UTF16) return Array.from(this.numbers(MI.UINT16, bytes));
    if (type === MI.UTF32 || type === MI.UINT32) return Array.from(this.numbers(MI.UINT32, bytes));
    this.fail(`char data of element type ${type}`);
  }
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
