/**
 * A restricted reader for the pickles CIFAR and Downsampled ImageNet publish: a dict of
 * str/bytes keys → lists of ints, strings, and numpy arrays, written by Python 2 cPickle
 * (protocol 2) or Python 3 pickle (protocols 2–4).
 *
 * A pickle is a program for a stack machine that may import and call any Python function.
 * This reader runs none of it: it accepts only the opcodes those files use, and only the
 * globals numpy needs to describe an array (`_reconstruct`, `ndarray`, `dtype`) plus
 * `_codecs.encode` / `bytes` (how Python 3 writes bytes under protocol 2). Each of those is
 * re-implemented here as a pure data constructor. Any other opcode or global is an error
 * naming the file and the byte offset; nothing in a data file is ever executed.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { DatasetError } from '../errors.js';

/** Bytes kept on disk: `length` bytes of `path` from `offset` (big arrays of a pickle file). */
export interface LazyBytes {
  readonly kind: 'lazy';
  readonly path: string;
  readonly offset: number;
  readonly length: number;
}

/** A Python `bytes` (or a Python 2 `str`). */
export class PyBytes {
  constructor(readonly bytes: Uint8Array | LazyBytes) {}
  get length(): number {
    return this.bytes instanceof Uint8Array ? this.bytes.length : this.bytes.length;
  }
  /** The bytes as latin-1 text (how Python 2 `str` keys such as 'data' read). */
  text(): string {
    if (!(this.bytes instanceof Uint8Array))
      throw new Error('PyBytes.text() on bytes left on disk');
    return Buffer.from(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength).toString(
      'latin1',
    );
  }
}

export class PyTuple {
  constructor(readonly items: readonly PickleValue[]) {}
}

/** A Python dict; str and bytes keys both become JS strings (bytes read as latin-1). */
export class PyDict {
  readonly entries = new Map<string | number, PickleValue>();
  get(key: string): PickleValue | undefined {
    return this.entries.get(key);
  }
  has(key: string): boolean {
    return this.entries.has(key);
  }
}

export type NumpyKind = 'u' | 'i' | 'f' | 'b';

export interface NumpyDtype {
  readonly kind: NumpyKind;
  readonly itemSize: number;
  readonly littleEndian: boolean;
}

/** A C-order numpy array: raw element bytes, in memory or on disk. */
export interface NdArray {
  readonly kind: 'ndarray';
  readonly dtype: NumpyDtype;
  readonly shape: readonly number[];
  readonly data: Uint8Array | LazyBytes;
}

export type PickleValue =
  | null
  | boolean
  | number
  | string
  | PyBytes
  | PickleValue[]
  | PyTuple
  | PyDict
  | NdArray;

export interface PickleLimits {
  /** Largest single bytes/str object (default 2 GiB: an ImageNet32 train batch is ~394 MB). */
  readonly maxObjectBytes?: number;
  /** Largest text string (default 64 MiB; Python 3 protocol 2 writes bytes as latin-1 text). */
  readonly maxTextBytes?: number;
  readonly maxMemo?: number;
  readonly maxStack?: number;
  /** Items in one list/dict/tuple (default 10M). */
  readonly maxItems?: number;
}

const DEFAULT_LIMITS: Required<PickleLimits> = {
  maxObjectBytes: 2 ** 31,
  maxTextBytes: 64 * 2 ** 20,
  maxMemo: 2_000_000,
  maxStack: 2_000_000,
  maxItems: 10_000_000,
};

/** Error in a pickle, naming the file and the byte offset of the offending opcode. */
export class PickleError extends DatasetError {}

/** The byte stream the reader consumes. */
interface ByteInput {
  readonly name: string;
  readonly size: number;
  readonly pos: number;
  byte(): number;
  /** `n` bytes as an owned or view Uint8Array (caller checked limits). */
  take(n: number): Uint8Array;
  /** `n` bytes, possibly left on disk. */
  takeLarge(n: number): Uint8Array | LazyBytes;
}

class BufferInput implements ByteInput {
  pos = 0;
  constructor(
    readonly name: string,
    private readonly buf: Uint8Array,
  ) {}
  get size(): number {
    return this.buf.length;
  }
  byte(): number {
    if (this.pos >= this.buf.length) throw truncated(this.name, this.pos, 1);
    return this.buf[this.pos++];
  }
  take(n: number): Uint8Array {
    if (this.pos + n > this.buf.length) throw truncated(this.name, this.pos, n);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  takeLarge(n: number): Uint8Array {
    return this.take(n);
  }
}

const FILE_CHUNK = 1 << 20;

/** Buffered reads from a file; objects ≥ `lazyBytes` are recorded by offset, not read. */
class FileInput implements ByteInput {
  private readonly buf = Buffer.alloc(FILE_CHUNK);
  private bufStart = 0; // file offset of buf[0]
  private bufLen = 0;
  private bufPos = 0;
  readonly size: number;
  constructor(
    readonly name: string,
    private readonly fd: number,
    private readonly lazyBytes: number,
  ) {
    this.size = fstatSync(fd).size;
  }
  get pos(): number {
    return this.bufStart + this.bufPos;
  }
  private refill(): void {
    this.bufStart += this.bufLen;
    this.bufPos = 0;
    this.bufLen = readSync(this.fd, this.buf, 0, FILE_CHUNK, this.bufStart);
  }
  byte(): number {
    if (this.bufPos >= this.bufLen) {
      this.refill();
      if (this.bufLen === 0) throw truncated(this.name, this.pos, 1);
    }
    return this.buf[this.bufPos++];
  }
  take(n: number): Uint8Array {
    const start = this.pos;
    if (start + n > this.size) throw truncated(this.name, start, n);
    const out = new Uint8Array(n);
    let done = 0;
    while (done < n) {
      if (this.bufPos >= this.bufLen) this.refill();
      const k = Math.min(n - done, this.bufLen - this.bufPos);
      if (k <= 0) throw truncated(this.name, start, n);
      out.set(this.buf.subarray(this.bufPos, this.bufPos + k), done);
      this.bufPos += k;
      done += k;
    }
    return out;
  }
  takeLarge(n: number): Uint8Array | LazyBytes {
    if (n < this.lazyBytes) return this.take(n);
    const offset = this.pos;
    if (offset + n > this.size) throw truncated(this.name, offset, n);
    // Drop the buffer and continue reading after the object.
    this.bufStart = offset + n;
    this.bufLen = 0;
    this.bufPos = 0;
    return { kind: 'lazy', path: this.name, offset, length: n };
  }
}

function truncated(name: string, pos: number, n: number): PickleError {
  return new PickleError(
    `Pickle ${name} ends inside an object at byte ${pos} (needs ${n} more bytes); the file is truncated or corrupt — replace it with the original download.`,
  );
}

/** Unpickle bytes held in memory (e.g. a tar entry). Arrays are views into `bytes`. */
export function unpickle(bytes: Uint8Array, name: string, limits: PickleLimits = {}): PickleValue {
  return new Unpickler(new BufferInput(name, bytes), { ...DEFAULT_LIMITS, ...limits }).run();
}

/**
 * Unpickle a file without loading its big objects: bytes/str objects of at least
 * `lazyBytes` (default 1 MiB) come back as `LazyBytes` (read them with `readLazy`).
 */
export function unpickleFile(
  path: string,
  options: PickleLimits & { lazyBytes?: number } = {},
): PickleValue {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    throw new DatasetError(`Cannot open pickle ${path}: ${(error as Error).message}.`);
  }
  try {
    const input = new FileInput(path, fd, options.lazyBytes ?? FILE_CHUNK);
    return new Unpickler(input, { ...DEFAULT_LIMITS, ...options }).run();
  } finally {
    closeSync(fd);
  }
}

/** Read `length` bytes at `start` (relative to the object) of bytes kept on disk. */
export function readLazy(lazy: LazyBytes, start: number, length: number, fd?: number): Uint8Array {
  if (start < 0 || start + length > lazy.length) {
    throw new RangeError(
      `Read of ${length} bytes at ${start} is outside a ${lazy.length}-byte object.`,
    );
  }
  const own = fd === undefined;
  const handle = fd ?? openSync(lazy.path, 'r');
  try {
    const out = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const n = readSync(handle, out, done, length - done, lazy.offset + start + done);
      if (n === 0) throw truncated(lazy.path, lazy.offset + start + done, length - done);
      done += n;
    }
    return out;
  } finally {
    if (own) closeSync(handle);
  }
}

// ---------------------------------------------------------------------------------------
// The stack machine.

/** A whitelisted global, as pushed by GLOBAL / STACK_GLOBAL. */
class GlobalRef {
  constructor(readonly fullName: AllowedGlobal) {}
}

/** An ndarray made by `_reconstruct`, waiting for its BUILD state. */
class PendingArray {
  built: NdArray | undefined;
}

/** A numpy dtype made by `dtype(typestr, align, copy)`, waiting for its BUILD state. */
class PendingDtype {
  byteOrder: string | undefined;
  constructor(
    readonly kind: NumpyKind,
    readonly itemSize: number,
  ) {}
}

class Mark {}

type StackItem = PickleValue | GlobalRef | PendingArray | PendingDtype | Mark;

const ALLOWED_GLOBALS = {
  'numpy.core.multiarray._reconstruct': 'reconstruct',
  'numpy._core.multiarray._reconstruct': 'reconstruct',
  'numpy.ndarray': 'ndarray',
  'numpy.dtype': 'dtype',
  '_codecs.encode': 'encode',
  '__builtin__.bytes': 'bytes',
  'builtins.bytes': 'bytes',
} as const;
type AllowedGlobal = keyof typeof ALLOWED_GLOBALS;

const OP = {
  PROTO: 0x80,
  FRAME: 0x95,
  STOP: 0x2e,
  MARK: 0x28,
  POP: 0x30,
  EMPTY_DICT: 0x7d,
  EMPTY_LIST: 0x5d,
  EMPTY_TUPLE: 0x29,
  TUPLE: 0x74,
  TUPLE1: 0x85,
  TUPLE2: 0x86,
  TUPLE3: 0x87,
  SETITEM: 0x73,
  SETITEMS: 0x75,
  APPEND: 0x61,
  APPENDS: 0x65,
  BINPUT: 0x71,
  LONG_BINPUT: 0x72,
  MEMOIZE: 0x94,
  BINGET: 0x68,
  LONG_BINGET: 0x6a,
  BININT: 0x4a,
  BININT1: 0x4b,
  BININT2: 0x4d,
  LONG1: 0x8a,
  NONE: 0x4e,
  NEWTRUE: 0x88,
  NEWFALSE: 0x89,
  BINFLOAT: 0x47,
  BINSTRING: 0x54,
  SHORT_BINSTRING: 0x55,
  BINUNICODE: 0x58,
  SHORT_BINUNICODE: 0x8c,
  BINUNICODE8: 0x8d,
  BINBYTES: 0x42,
  SHORT_BINBYTES: 0x43,
  BINBYTES8: 0x8e,
  GLOBAL: 0x63,
  STACK_GLOBAL: 0x93,
  REDUCE: 0x52,
  BUILD: 0x62,
} as const;

const OPCODE_NAMES = new Map<number, string>(Object.entries(OP).map(([k, v]) => [v, k]));

class Unpickler {
  private readonly stack: StackItem[] = [];
  private readonly marks: number[] = [];
  private readonly memo = new Map<number, StackItem>();
  private opPos = 0;

  constructor(
    private readonly input: ByteInput,
    private readonly limits: Required<PickleLimits>,
  ) {}

  private fail(why: string): never {
    throw new PickleError(
      `Pickle ${this.input.name}, opcode at byte ${this.opPos}: ${why}. Only CIFAR/ImageNet32 data pickles are accepted; this file was refused and nothing in it was run.`,
    );
  }

  private push(item: StackItem): void {
    if (this.stack.length >= this.limits.maxStack)
      this.fail(`stack exceeds ${this.limits.maxStack} items`);
    this.stack.push(item);
  }

  private pop(): StackItem {
    const floor = this.marks.length ? this.marks[this.marks.length - 1] : 0;
    if (this.stack.length <= floor) this.fail('pops from an empty stack');
    return this.stack.pop() as StackItem;
  }

  private top(): StackItem {
    const floor = this.marks.length ? this.marks[this.marks.length - 1] : 0;
    if (this.stack.length <= floor) this.fail('reads an empty stack');
    return this.stack[this.stack.length - 1];
  }

  private popMark(): StackItem[] {
    const mark = this.marks.pop();
    if (mark === undefined) this.fail('uses a MARK that was never set');
    const items = this.stack.splice(mark);
    return items;
  }

  private value(item: StackItem, what: string): PickleValue {
    if (item instanceof GlobalRef || item instanceof PendingDtype || item instanceof Mark) {
      this.fail(`${what} is a ${item.constructor.name}, not a data value`);
    }
    if (item instanceof PendingArray) {
      if (!item.built) this.fail(`${what} is a numpy array that never received its state (BUILD)`);
      return item.built;
    }
    return item;
  }

  /** Tuples may carry the ndarray class and dtypes (arguments and state of numpy's reduce). */
  private tupleItem(item: StackItem): PickleValue {
    if (item instanceof Mark) this.fail('puts a MARK inside a tuple');
    if (item instanceof PendingArray) return this.value(item, 'a tuple item');
    return item as PickleValue;
  }

  private u32(): number {
    const b = this.input.take(4);
    return (b[0] | (b[1] << 8) | (b[2] << 16)) + b[3] * 0x1000000;
  }

  private u64(): number {
    const lo = this.u32();
    const hi = this.u32();
    if (hi >= 0x200000) this.fail('declares an 8-byte length beyond 2^53');
    return hi * 0x100000000 + lo;
  }

  private bytesObject(n: number): Uint8Array | LazyBytes {
    if (n > this.limits.maxObjectBytes) {
      this.fail(`declares a ${n}-byte object, over the ${this.limits.maxObjectBytes}-byte limit`);
    }
    if (this.input.pos + n > this.input.size) throw truncated(this.input.name, this.input.pos, n);
    return this.input.takeLarge(n);
  }

  private text(n: number): string {
    if (n > this.limits.maxTextBytes)
      this.fail(`declares a ${n}-byte string, over the ${this.limits.maxTextBytes}-byte limit`);
    const b = this.input.take(n);
    return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');
  }

  private line(): string {
    let s = '';
    for (;;) {
      const c = this.input.byte();
      if (c === 0x0a) return s;
      if (s.length >= 256) this.fail('has a GLOBAL name longer than 256 characters');
      s += String.fromCharCode(c);
    }
  }

  private global(module: string, name: string): GlobalRef {
    const full = `${module}.${name}`;
    if (!Object.hasOwn(ALLOWED_GLOBALS, full)) {
      this.fail(`refers to the Python global '${full}', which a data file has no reason to use`);
    }
    return new GlobalRef(full as AllowedGlobal);
  }

  private memoPut(index: number): void {
    if (!this.memo.has(index) && this.memo.size >= this.limits.maxMemo)
      this.fail(`memo exceeds ${this.limits.maxMemo} entries`);
    this.memo.set(index, this.top());
  }

  private memoGet(index: number): void {
    if (!this.memo.has(index)) this.fail(`reads memo slot ${index}, which was never written`);
    this.push(this.memo.get(index) as StackItem);
  }

  private checkItems(n: number): void {
    if (n > this.limits.maxItems)
      this.fail(`builds a container of more than ${this.limits.maxItems} items`);
  }

  run(): PickleValue {
    const input = this.input;
    for (;;) {
      this.opPos = input.pos;
      const op = input.byte();
      switch (op) {
        case OP.PROTO: {
          const version = input.byte();
          if (version < 2 || version > 4)
            this.fail(`uses pickle protocol ${version}; only 2–4 are accepted`);
          break;
        }
        case OP.FRAME:
          this.u64(); // frame length: a hint for buffering, content follows inline
          break;
        case OP.STOP: {
          const result = this.pop();
          if (this.stack.length !== 0 || this.marks.length !== 0)
            this.fail('stops with items left on the stack');
          return this.value(result, 'the result');
        }
        case OP.MARK:
          this.marks.push(this.stack.length);
          break;
        case OP.POP:
          this.pop();
          break;
        case OP.EMPTY_DICT:
          this.push(new PyDict());
          break;
        case OP.EMPTY_LIST:
          this.push([]);
          break;
        case OP.EMPTY_TUPLE:
          this.push(new PyTuple([]));
          break;
        case OP.TUPLE:
          this.push(new PyTuple(this.popMark().map((x) => this.tupleItem(x))));
          break;
        case OP.TUPLE1:
        case OP.TUPLE2:
        case OP.TUPLE3: {
          const n = op - OP.TUPLE1 + 1;
          const items: PickleValue[] = [];
          for (let i = 0; i < n; i++) items.unshift(this.tupleItem(this.pop()));
          this.push(new PyTuple(items));
          break;
        }
        case OP.SETITEM: {
          const v = this.value(this.pop(), 'a dict value');
          const k = this.value(this.pop(), 'a dict key');
          this.setItem(this.top(), k, v);
          break;
        }
        case OP.SETITEMS: {
          const items = this.popMark();
          if (items.length % 2 !== 0) this.fail('SETITEMS has an odd number of items');
          const dict = this.top();
          for (let i = 0; i < items.length; i += 2) {
            this.setItem(
              dict,
              this.value(items[i], 'a dict key'),
              this.value(items[i + 1], 'a dict value'),
            );
          }
          break;
        }
        case OP.APPEND: {
          const v = this.value(this.pop(), 'a list item');
          this.appendTo(this.top(), [v]);
          break;
        }
        case OP.APPENDS: {
          const items = this.popMark().map((x) => this.value(x, 'a list item'));
          this.appendTo(this.top(), items);
          break;
        }
        case OP.BINPUT:
          this.memoPut(input.byte());
          break;
        case OP.LONG_BINPUT:
          this.memoPut(this.u32());
          break;
        case OP.MEMOIZE:
          this.memoPut(this.memo.size);
          break;
        case OP.BINGET:
          this.memoGet(input.byte());
          break;
        case OP.LONG_BINGET:
          this.memoGet(this.u32());
          break;
        case OP.BININT: {
          const b = input.take(4);
          this.push(b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24));
          break;
        }
        case OP.BININT1:
          this.push(input.byte());
          break;
        case OP.BININT2: {
          const lo = input.byte();
          this.push(lo | (input.byte() << 8));
          break;
        }
        case OP.LONG1: {
          const n = input.byte();
          if (n > 8) this.fail(`has a ${n}-byte integer; labels and shapes fit in 8 bytes`);
          const b = input.take(n);
          let v = 0n;
          for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
          if (n > 0 && b[n - 1] & 0x80) v -= 1n << BigInt(8 * n);
          if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
            this.fail(`has integer ${v}, beyond 2^53`);
          }
          this.push(Number(v));
          break;
        }
        case OP.NONE:
          this.push(null);
          break;
        case OP.NEWTRUE:
          this.push(true);
          break;
        case OP.NEWFALSE:
          this.push(false);
          break;
        case OP.BINFLOAT: {
          const b = input.take(8);
          this.push(new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, false));
          break;
        }
        case OP.BINSTRING: // Python 2 str: bytes
          this.push(new PyBytes(this.bytesObject(this.u32())));
          break;
        case OP.SHORT_BINSTRING:
          this.push(new PyBytes(this.bytesObject(input.byte())));
          break;
        case OP.BINBYTES:
          this.push(new PyBytes(this.bytesObject(this.u32())));
          break;
        case OP.SHORT_BINBYTES:
          this.push(new PyBytes(this.bytesObject(input.byte())));
          break;
        case OP.BINBYTES8:
          this.push(new PyBytes(this.bytesObject(this.u64())));
          break;
        case OP.BINUNICODE:
          this.push(this.text(this.u32()));
          break;
        case OP.SHORT_BINUNICODE:
          this.push(this.text(input.byte()));
          break;
        case OP.BINUNICODE8:
          this.push(this.text(this.u64()));
          break;
        case OP.GLOBAL: {
          const module = this.line();
          const name = this.line();
          this.push(this.global(module, name));
          break;
        }
        case OP.STACK_GLOBAL: {
          const name = this.pop();
          const module = this.pop();
          if (typeof name !== 'string' || typeof module !== 'string')
            this.fail('STACK_GLOBAL needs two strings');
          this.push(this.global(module, name));
          break;
        }
        case OP.REDUCE: {
          const args = this.pop();
          const callable = this.pop();
          this.push(this.reduce(callable, args));
          break;
        }
        case OP.BUILD: {
          const state = this.value(this.pop(), 'BUILD state');
          this.build(this.top(), state);
          break;
        }
        default: {
          const known = OPCODE_NAMES.get(op);
          this.fail(
            `has opcode 0x${op.toString(16).padStart(2, '0')}${known ? ` (${known})` : ` ('${op >= 0x20 && op < 0x7f ? String.fromCharCode(op) : '?'}')`}, which these data files never use`,
          );
        }
      }
    }
  }

  private setItem(target: StackItem, key: PickleValue, value: PickleValue): void {
    if (!(target instanceof PyDict)) this.fail('SETITEM on something that is not a dict');
    let k: string | number;
    if (typeof key === 'string' || typeof key === 'number') k = key;
    else if (key instanceof PyBytes && key.bytes instanceof Uint8Array) k = key.text();
    else this.fail('has a dict key that is not a string, bytes or int');
    if (!target.entries.has(k)) this.checkItems(target.entries.size + 1);
    target.entries.set(k, value);
  }

  private appendTo(target: StackItem, items: PickleValue[]): void {
    if (!Array.isArray(target)) this.fail('APPEND on something that is not a list');
    this.checkItems(target.length + items.length);
    for (const item of items) target.push(item);
  }

  /** REDUCE: call a whitelisted global, re-implemented as a data constructor. */
  private reduce(callable: StackItem, args: StackItem): StackItem {
    if (!(callable instanceof GlobalRef))
      this.fail('calls (REDUCE) something that is not a permitted global');
    if (!(args instanceof PyTuple))
      this.fail(`calls ${callable.fullName} without an argument tuple`);
    const a = args.items;
    switch (ALLOWED_GLOBALS[callable.fullName]) {
      case 'reconstruct': {
        // numpy: _reconstruct(ndarray, (0,), b'b') → an empty array filled in by BUILD.
        if (a.length !== 3 || !isNdarrayClass(a[0])) {
          this.fail('calls numpy _reconstruct with unexpected arguments');
        }
        return new PendingArray();
      }
      case 'dtype': {
        const spec = a[0];
        const typestr =
          typeof spec === 'string'
            ? spec
            : spec instanceof PyBytes && spec.bytes instanceof Uint8Array
              ? spec.text()
              : '';
        const m = /^([uifb])(\d)$/.exec(typestr);
        if (!m || a.length > 3)
          this.fail(`makes numpy dtype '${typestr}', which is not a plain number type`);
        const itemSize = Number(m[2]);
        if (![1, 2, 4, 8].includes(itemSize) || (m[1] === 'f' && itemSize < 4))
          this.fail(`makes unsupported numpy dtype '${typestr}'`);
        return new PendingDtype(m[1] as NumpyKind, itemSize);
      }
      case 'encode': {
        // Python 3, protocol 2: bytes b are written as _codecs.encode(b.decode('latin1'), 'latin1').
        const [text, codec] = a;
        const codecName = typeof codec === 'string' ? codec.toLowerCase() : '';
        if (
          typeof text !== 'string' ||
          a.length !== 2 ||
          (codecName !== 'latin1' && codecName !== 'latin-1')
        ) {
          this.fail('calls _codecs.encode with arguments other than (str, "latin1")');
        }
        const out = new Uint8Array(text.length);
        for (let i = 0; i < text.length; i++) {
          const c = text.charCodeAt(i);
          if (c > 0xff) this.fail('encodes a character beyond latin-1');
          out[i] = c;
        }
        return new PyBytes(out);
      }
      case 'bytes':
        if (a.length !== 0)
          this.fail('calls bytes() with arguments; only bytes() (empty) is accepted');
        return new PyBytes(new Uint8Array(0));
      default: // includes 'ndarray'
        this.fail(`calls ${callable.fullName}, which may only be passed as an argument`);
    }
  }

  /** BUILD: give a dtype its byte order, or an array its shape, dtype and bytes. */
  private build(target: StackItem, state: PickleValue): void {
    if (target instanceof PendingDtype) {
      // (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata])
      if (!(state instanceof PyTuple) || state.items.length < 8)
        this.fail('gives a numpy dtype an unexpected state');
      const order = state.items[1];
      const text =
        typeof order === 'string'
          ? order
          : order instanceof PyBytes && order.bytes instanceof Uint8Array
            ? order.text()
            : '';
      if (!['<', '>', '|', '='].includes(text))
        this.fail(`gives a numpy dtype byte order '${text}'`);
      if (state.items[2] !== null || state.items[3] !== null || state.items[4] !== null) {
        this.fail('gives a numpy dtype sub-arrays or fields; only plain number types are accepted');
      }
      target.byteOrder = text;
      return;
    }
    if (target instanceof PendingArray) {
      // (version, shape, dtype, is_fortran, raw bytes)
      if (target.built) this.fail('gives a numpy array its state twice');
      if (!(state instanceof PyTuple) || state.items.length !== 5)
        this.fail('gives a numpy array an unexpected state');
      const [, shapeItem, dtypeItem, fortran, raw] = state.items as unknown as StackItem[];
      if (
        !(shapeItem instanceof PyTuple) ||
        !shapeItem.items.every((d) => typeof d === 'number' && Number.isInteger(d) && d >= 0)
      ) {
        this.fail('gives a numpy array a shape that is not a tuple of sizes');
      }
      const shape = shapeItem.items as number[];
      if (!(dtypeItem instanceof PendingDtype) || dtypeItem.byteOrder === undefined) {
        this.fail('gives a numpy array a dtype that is not a built numpy dtype');
      }
      if (fortran !== false && fortran !== 0 && shape.filter((d) => d > 1).length > 1) {
        this.fail('stores a numpy array in Fortran order; only C order is accepted');
      }
      if (!(raw instanceof PyBytes))
        this.fail('gives a numpy array data that is not bytes (object arrays are refused)');
      const elements = shape.reduce((x, y) => x * y, 1);
      if (raw.length !== elements * dtypeItem.itemSize) {
        this.fail(
          `gives a numpy array of shape (${shape.join(', ')}) ${raw.length} bytes instead of ${elements * dtypeItem.itemSize}`,
        );
      }
      const littleEndian =
        dtypeItem.byteOrder !== '>' && !(dtypeItem.byteOrder === '=' && !isLittleEndianHost());
      target.built = {
        kind: 'ndarray',
        dtype: { kind: dtypeItem.kind, itemSize: dtypeItem.itemSize, littleEndian },
        shape,
        data: raw.bytes,
      };
      return;
    }
    this.fail('BUILD on something other than a numpy array or dtype');
  }
}

function isNdarrayClass(x: unknown): boolean {
  // _reconstruct's first argument is the ndarray class, which stays a GlobalRef.
  return x instanceof GlobalRef && x.fullName === 'numpy.ndarray';
}

function isLittleEndianHost(): boolean {
  return new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
}

// ---------------------------------------------------------------------------------------
// Accessors for the batch dicts.

/** `dict[key]` of a batch dict, or an error naming the file and the keys it has. */
export function batchField(value: PickleValue, key: string, file: string): PickleValue {
  if (!(value instanceof PyDict)) {
    throw new DatasetError(
      `Pickle ${file} holds a ${describe(value)}, not the dict of a data batch; it is not the right file.`,
    );
  }
  if (!value.has(key)) {
    const keys = [...value.entries.keys()].map((k) => `'${k}'`).join(', ');
    throw new DatasetError(
      `Pickle ${file} has no '${key}' entry (it has ${keys}); it is not the right file.`,
    );
  }
  return value.get(key) as PickleValue;
}

/** A list of ints (or a 1-D integer numpy array in memory) as numbers. */
export function intList(value: PickleValue, what: string, file: string): number[] {
  if (Array.isArray(value)) {
    return value.map((v, i) => {
      if (typeof v !== 'number' || !Number.isInteger(v)) {
        throw new DatasetError(
          `Pickle ${file}: ${what}[${i}] is a ${describe(v)}, not an integer.`,
        );
      }
      return v;
    });
  }
  if (
    isNdArray(value) &&
    value.shape.length === 1 &&
    value.dtype.kind !== 'f' &&
    value.data instanceof Uint8Array
  ) {
    return ndarrayToNumbers(value);
  }
  throw new DatasetError(
    `Pickle ${file}: ${what} is a ${describe(value)}, not a list of integers.`,
  );
}

/** A list of str/bytes as JS strings. */
export function stringList(value: PickleValue, what: string, file: string): string[] {
  if (!Array.isArray(value))
    throw new DatasetError(`Pickle ${file}: ${what} is a ${describe(value)}, not a list of names.`);
  return value.map((v, i) => {
    if (typeof v === 'string') return v;
    if (v instanceof PyBytes && v.bytes instanceof Uint8Array) return v.text();
    throw new DatasetError(`Pickle ${file}: ${what}[${i}] is a ${describe(v)}, not a name.`);
  });
}

export function isNdArray(value: unknown): value is NdArray {
  return typeof value === 'object' && value !== null && (value as NdArray).kind === 'ndarray';
}

/** Integer elements of an in-memory numpy array (1-D or any shape, C order). */
export function ndarrayToNumbers(array: NdArray): number[] {
  if (!(array.data instanceof Uint8Array)) throw new Error('ndarrayToNumbers on data left on disk');
  const { kind, itemSize, littleEndian } = array.dtype;
  const d = array.data;
  const view = new DataView(d.buffer, d.byteOffset, d.byteLength);
  const n = d.length / itemSize;
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const o = i * itemSize;
    let v: number;
    if (kind === 'f')
      v = itemSize === 4 ? view.getFloat32(o, littleEndian) : view.getFloat64(o, littleEndian);
    else if (itemSize === 1) v = kind === 'i' ? view.getInt8(o) : view.getUint8(o);
    else if (itemSize === 2)
      v = kind === 'i' ? view.getInt16(o, littleEndian) : view.getUint16(o, littleEndian);
    else if (itemSize === 4)
      v = kind === 'i' ? view.getInt32(o, littleEndian) : view.getUint32(o, littleEndian);
    else {
      const big =
        kind === 'i' ? view.getBigInt64(o, littleEndian) : view.getBigUint64(o, littleEndian);
      if (big > BigInt(Number.MAX_SAFE_INTEGER) || big < BigInt(Number.MIN_SAFE_INTEGER)) {
        throw new RangeError(`Array element ${i} is ${big}, beyond 2^53.`);
      }
      v = Number(big);
    }
    out[i] = v;
  }
  return out;
}

export function describe(value: unknown): string {
  if (value === null) return 'None';
  if (Array.isArray(value)) return `list of ${value.length}`;
  if (value instanceof PyBytes) return `bytes object of ${value.length} bytes`;
  if (value instanceof PyTuple) return `tuple of ${value.items.length}`;
  if (value instanceof PyDict) return 'dict';
  if (isNdArray(value)) return `numpy array of shape (${value.shape.join(', ')})`;
  return typeof value;
}
