/**
 * Test-side writers for the real published formats: Python pickles (protocol 2 as Python 2
 * cPickle writes them, protocol 4 as Python 3 does), numpy arrays inside them, ustar/pax tar,
 * zip (stored/deflated) and .npy. Written from the format specifications, byte by byte.
 */
import { crc32, deflateRawSync } from 'node:zlib';

// ------------------------------------------------------------------------------- pickle

export type PyValue =
  | { t: 'int'; v: number }
  | { t: 'str'; v: string } // Python 2 str (bytes) or Python 3 str, depending on the writer
  | { t: 'bytes'; v: Uint8Array }
  | { t: 'list'; v: PyValue[] }
  | { t: 'dict'; v: [string, PyValue][] }
  | { t: 'u8array'; shape: number[]; data: Uint8Array }
  | { t: 'i64array'; data: number[] };

export const py = {
  int: (v: number): PyValue => ({ t: 'int', v }),
  str: (v: string): PyValue => ({ t: 'str', v }),
  ints: (vs: readonly number[]): PyValue => ({ t: 'list', v: vs.map((v) => ({ t: 'int', v })) }),
  strs: (vs: readonly string[]): PyValue => ({ t: 'list', v: vs.map((v) => ({ t: 'str', v })) }),
  dict: (entries: [string, PyValue][]): PyValue => ({ t: 'dict', v: entries }),
  u8array: (shape: number[], data: Uint8Array): PyValue => ({ t: 'u8array', shape, data }),
};

class Bytes {
  parts: number[] = [];
  byte(...b: number[]) {
    this.parts.push(...b);
  }
  u16(n: number) {
    this.byte(n & 0xff, (n >> 8) & 0xff);
  }
  u32(n: number) {
    this.byte(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff);
  }
  raw(b: Uint8Array | number[]) {
    for (const x of b) this.parts.push(x);
  }
  ascii(s: string) {
    this.raw([...Buffer.from(s, 'latin1')]);
  }
}

/**
 * Pickle a value. `style: 'py2'` = protocol 2 from Python 2 cPickle (GLOBAL, BINSTRING/
 * SHORT_BINSTRING, BINPUT); `'py3'` = protocol 4 from Python 3 (FRAME, STACK_GLOBAL,
 * SHORT_BINUNICODE, BINBYTES, MEMOIZE).
 */
export function pickle(value: PyValue, style: 'py2' | 'py3' = 'py2'): Buffer {
  const out = new Bytes();
  let memo = 0;
  const put = () => {
    if (style === 'py3') out.byte(0x94);
    else if (memo < 256) out.byte(0x71, memo);
    else {
      out.byte(0x72);
      out.u32(memo);
    }
    memo += 1;
  };
  /** A length-prefixed string opcode: `short` + 1-byte length below 256, else `long` + u32. */
  const prefixed = (b: Uint8Array, short: number, long: number) => {
    if (b.length < 256) out.byte(short, b.length);
    else {
      out.byte(long);
      out.u32(b.length);
    }
    out.raw(b);
    put();
  };
  // Python 2 pickles both as SHORT_BINSTRING/BINSTRING; Python 3 uses SHORT_BINUNICODE/BINUNICODE
  // for text and SHORT_BINBYTES/BINBYTES for bytes.
  const text = (s: string) =>
    style === 'py3'
      ? prefixed(Buffer.from(s, 'utf8'), 0x8c, 0x58)
      : prefixed(Buffer.from(s, 'latin1'), 0x55, 0x54);
  const bytes = (b: Uint8Array) =>
    style === 'py3' ? prefixed(b, 0x43, 0x42) : prefixed(b, 0x55, 0x54);
  const global = (module: string, name: string) => {
    if (style === 'py3') {
      text(module);
      text(name);
      out.byte(0x93);
    } else {
      out.byte(0x63);
      out.ascii(`${module}\n${name}\n`);
    }
    put();
  };
  const int = (v: number) => {
    if (v >= 0 && v < 256) out.byte(0x4b, v);
    else if (v >= 0 && v < 65536) {
      out.byte(0x4d);
      out.u16(v);
    } else {
      out.byte(0x4a);
      out.u32(v >>> 0);
    }
  };
  const ndarray = (shape: number[], data: Uint8Array, typestr: string, order: string) => {
    global('numpy.core.multiarray', '_reconstruct');
    global('numpy', 'ndarray');
    int(0);
    out.byte(0x85); // (0,)
    put();
    bytes(Buffer.from('b'));
    out.byte(0x87); // (ndarray, (0,), b'b')
    put();
    out.byte(0x52); // REDUCE
    put();
    out.byte(0x28); // MARK: state tuple
    int(1);
    for (const d of shape) int(d);
    out.byte(shape.length === 1 ? 0x85 : shape.length === 2 ? 0x86 : 0x87);
    put();
    global('numpy', 'dtype');
    text(typestr);
    out.byte(0x89, 0x88, 0x87); // False True → (typestr, False, True)
    put();
    out.byte(0x52);
    put();
    out.byte(0x28);
    int(3);
    text(order);
    out.byte(0x4e, 0x4e, 0x4e);
    out.byte(0x4a);
    out.u32(0xffffffff);
    out.byte(0x4a);
    out.u32(0xffffffff);
    int(0);
    out.byte(0x74); // TUPLE
    put();
    out.byte(0x62); // BUILD dtype
    out.byte(0x89); // is_fortran False
    bytes(data);
    out.byte(0x74);
    put();
    out.byte(0x62); // BUILD array
  };
  const write = (v: PyValue): void => {
    switch (v.t) {
      case 'int':
        return int(v.v);
      case 'str':
        return text(v.v);
      case 'bytes':
        return bytes(v.v);
      case 'list':
        out.byte(0x5d);
        put();
        for (let i = 0; i < v.v.length; i += 1000) {
          out.byte(0x28);
          for (const item of v.v.slice(i, i + 1000)) write(item);
          out.byte(0x65); // APPENDS
        }
        return;
      case 'dict':
        out.byte(0x7d);
        put();
        out.byte(0x28);
        for (const [k, item] of v.v) {
          text(k);
          write(item);
        }
        out.byte(0x75); // SETITEMS
        return;
      case 'u8array':
        return ndarray(v.shape, v.data, 'u1', '|');
      case 'i64array': {
        const b = Buffer.alloc(8 * v.data.length);
        v.data.forEach((x, i) => b.writeBigInt64LE(BigInt(x), 8 * i));
        return ndarray([v.data.length], b, 'i8', '<');
      }
    }
  };
  out.byte(0x80, style === 'py3' ? 4 : 2);
  const bodyStart = out.parts.length;
  write(value);
  out.byte(0x2e);
  if (style === 'py3') {
    // One FRAME around the whole body, as Python 3 writes small pickles.
    const body = out.parts.splice(bodyStart);
    out.byte(0x95);
    out.u32(body.length);
    out.u32(0);
    out.raw(body);
  }
  return Buffer.from(out.parts);
}

// ------------------------------------------------------------------------------- tar

export interface TarFile {
  name: string;
  data?: Uint8Array;
  /** '0' file (default), '5' dir, '2' symlink, '1' hard link. */
  type?: string;
  linkName?: string;
  /** Write the name in a pax 'x' header (for names over 100 bytes). */
  pax?: boolean;
}

function tarHeader(name: string, size: number, type: string, linkName = ''): Buffer {
  const h = Buffer.alloc(512);
  h.write(name.slice(0, 100), 0, 'utf8');
  h.write('0000644\0', 100, 'latin1');
  h.write('0001750\0', 108, 'latin1');
  h.write('0001750\0', 116, 'latin1');
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  h.write(`${(1_500_000_000).toString(8).padStart(11, '0')}\0`, 136, 'latin1');
  h.write('        ', 148, 'latin1');
  h.write(type, 156, 'latin1');
  h.write(linkName, 157, 'utf8');
  h.write('ustar\0', 257, 'latin1');
  h.write('00', 263, 'latin1');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}

const pad512 = (n: number) => Buffer.alloc((512 - (n % 512)) % 512);

export function tar(files: TarFile[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of files) {
    const data = Buffer.from(f.data ?? new Uint8Array(0));
    let name = f.name;
    if (f.pax) {
      const record = (body: string) => {
        let len = body.length + 3;
        while (`${len} ${body}\n`.length !== len) len = `${len} ${body}\n`.length;
        return `${len} ${body}\n`;
      };
      const paxBody = Buffer.from(record(`path=${f.name}`), 'utf8');
      parts.push(tarHeader('PaxHeader/x', paxBody.length, 'x'), paxBody, pad512(paxBody.length));
      name = 'placeholder-name';
    }
    parts.push(tarHeader(name, data.length, f.type ?? '0', f.linkName), data, pad512(data.length));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

// ------------------------------------------------------------------------------- zip / npy

export interface ZipFile {
  name: string;
  data: Uint8Array;
  deflate?: boolean;
  /** Override the uncompressed size written in the headers. */
  declaredSize?: number;
}

export function zip(files: ZipFile[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const f of files) {
    const name = Buffer.from(f.name, 'utf8');
    const body = f.deflate ? deflateRawSync(f.data) : Buffer.from(f.data);
    const crc = crc32(f.data) >>> 0;
    const size = f.declaredSize ?? f.data.length;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(f.deflate ? 8 : 0, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    locals.push(local, name, body);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(0x031e, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(f.deflate ? 8 : 0, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(size, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE((0o100644 << 16) >>> 0, 38);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name);
    offset += 30 + name.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(files.length, 8);
  end.writeUInt16LE(files.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

/** .npy version 1.0 with the header padded to a multiple of 64 bytes. */
export function npy(descr: string, shape: number[], data: Uint8Array): Buffer {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const pre = Buffer.alloc(10);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(pre);
  pre.writeUInt16LE(header.length, 8);
  return Buffer.concat([pre, Buffer.from(header, 'latin1'), Buffer.from(data)]);
}

export function int64Bytes(values: number[]): Buffer {
  const b = Buffer.alloc(8 * values.length);
  values.forEach((v, i) => b.writeBigInt64LE(BigInt(v), 8 * i));
  return b;
}

/** Deterministic planar (R,G,B planes) pixels of image `i` with salt `s`. */
export function planarPixels(i: number, s: number): Uint8Array {
  const out = new Uint8Array(3072);
  for (let p = 0; p < 3072; p++) out[p] = (i * 31 + p * 7 + s * 13 + (p >> 10) * 50) & 0xff;
  return out;
}

/** The same image in HWC order, as the index stores it. */
export function hwcOf(planar: Uint8Array): Uint8Array {
  const out = new Uint8Array(3072);
  for (let p = 0; p < 1024; p++) for (let c = 0; c < 3; c++) out[3 * p + c] = planar[c * 1024 + p];
  return out;
}
