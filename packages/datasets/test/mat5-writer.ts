import { deflateSync } from 'node:zlib';

/**
 * A test-side MAT v5 writer for the arrays the Cars196 devkit uses, byte for byte in the
 * layout MATLAB writes: 128-byte header, miMATRIX elements (array flags, dims, name, data),
 * small data elements for ≤ 4-byte payloads, 8-byte padding, optional miCOMPRESSED wrapping.
 */
export type MatIn =
  | { kind: 'double'; dims: number[]; values: number[] }
  | { kind: 'uint8'; dims: number[]; values: number[] }
  | { kind: 'char'; text: string }
  | { kind: 'cell'; dims: number[]; cells: MatIn[] }
  | { kind: 'struct'; dims: number[]; fields: string[]; elements: Record<string, MatIn>[] };

const MI_INT8 = 1,
  MI_UINT8 = 2,
  MI_UINT16 = 4,
  MI_INT32 = 5,
  MI_UINT32 = 6,
  MI_DOUBLE = 9,
  MI_MATRIX = 14,
  MI_COMPRESSED = 15;
const MX_CELL = 1,
  MX_STRUCT = 2,
  MX_CHAR = 4,
  MX_DOUBLE = 6,
  MX_UINT8 = 9;

export class MatWriter {
  constructor(private readonly littleEndian = true) {}

  private u32(values: number[]): Buffer {
    const b = Buffer.alloc(4 * values.length);
    values.forEach((v, i) =>
      this.littleEndian ? b.writeUInt32LE(v >>> 0, 4 * i) : b.writeUInt32BE(v >>> 0, 4 * i),
    );
    return b;
  }
  private i32(values: number[]): Buffer {
    const b = Buffer.alloc(4 * values.length);
    values.forEach((v, i) =>
      this.littleEndian ? b.writeInt32LE(v, 4 * i) : b.writeInt32BE(v, 4 * i),
    );
    return b;
  }
  private f64(values: number[]): Buffer {
    const b = Buffer.alloc(8 * values.length);
    values.forEach((v, i) =>
      this.littleEndian ? b.writeDoubleLE(v, 8 * i) : b.writeDoubleBE(v, 8 * i),
    );
    return b;
  }
  private u16(values: number[]): Buffer {
    const b = Buffer.alloc(2 * values.length);
    values.forEach((v, i) =>
      this.littleEndian ? b.writeUInt16LE(v, 2 * i) : b.writeUInt16BE(v, 2 * i),
    );
    return b;
  }

  /** A data element: small format when 1–4 bytes, else tag + data + padding to 8. */
  element(type: number, data: Buffer): Buffer {
    if (data.length > 0 && data.length <= 4) {
      const tag = this.u32([(data.length << 16) | type]);
      return Buffer.concat([tag, data, Buffer.alloc(4 - data.length)]);
    }
    const pad = (8 - (data.length % 8)) % 8;
    return Buffer.concat([this.u32([type, data.length]), data, Buffer.alloc(pad)]);
  }

  private matrixBody(value: MatIn, name: string): Buffer {
    const header = (mxClass: number, dims: number[]) =>
      Buffer.concat([
        this.element(MI_UINT32, this.u32([mxClass, 0])),
        this.element(MI_INT32, this.i32(dims)),
        this.element(MI_INT8, Buffer.from(name, 'latin1')),
      ]);
    switch (value.kind) {
      case 'double':
        return Buffer.concat([
          header(MX_DOUBLE, value.dims),
          this.element(MI_DOUBLE, this.f64(value.values)),
        ]);
      case 'uint8':
        // MATLAB stores small integer-valued doubles compactly too; here a real uint8 array.
        return Buffer.concat([
          header(MX_UINT8, value.dims),
          this.element(MI_UINT8, Buffer.from(value.values)),
        ]);
      case 'char': {
        const codes = Array.from(value.text, (c) => c.charCodeAt(0));
        return Buffer.concat([
          header(MX_CHAR, [1, codes.length]),
          this.element(MI_UINT16, this.u16(codes)),
        ]);
      }
      case 'cell':
        return Buffer.concat([
          header(MX_CELL, value.dims),
          ...value.cells.map((c) => this.matrix(c, '')),
        ]);
      case 'struct': {
        const width = 32;
        const names = Buffer.alloc(width * value.fields.length);
        value.fields.forEach((f, i) => names.write(f, i * width, 'latin1'));
        const parts = [
          header(MX_STRUCT, value.dims),
          this.element(MI_INT32, this.i32([width])),
          this.element(MI_INT8, names),
        ];
        for (const element of value.elements)
          for (const f of value.fields) parts.push(this.matrix(element[f], ''));
        return Buffer.concat(parts);
      }
    }
  }

  matrix(value: MatIn, name: string): Buffer {
    const body = this.matrixBody(value, name);
    return Buffer.concat([this.u32([MI_MATRIX, body.length]), body]);
  }

  file(vars: Record<string, MatIn>, options: { compress?: boolean } = {}): Buffer {
    const header = Buffer.alloc(128, 0x20);
    header.write(
      'MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024',
      0,
      'latin1',
    );
    header.fill(0, 116, 124);
    if (this.littleEndian) header.writeUInt16LE(0x0100, 124);
    else header.writeUInt16BE(0x0100, 124);
    header.write(this.littleEndian ? 'IM' : 'MI', 126, 'latin1');
    const parts: Buffer[] = [header];
    for (const [name, value] of Object.entries(vars)) {
      const m = this.matrix(value, name);
      if (options.compress) {
        const z = deflateSync(m);
        parts.push(Buffer.concat([this.u32([MI_COMPRESSED, z.length]), z]));
      } else parts.push(m);
    }
    return Buffer.concat(parts);
  }
}

export const MAT_TYPES = { MI_COMPRESSED, MI_MATRIX };
