/**
 * A restricted reader for the pickles CIFAR and Downsampled ImageNet publish: a dict of
 * str/bytes keys → lists of ints, strings, and numpy arrays, written by Python 2 cPickle
 * (protocol 2) or Python 3 pickle (protocols 2–5; protocol 5 writes arrays as
 * `_frombuffer(bytearray, dtype, shape, order)`). With `profile: 'torch'` it reads instead the
 * `data.pkl` of a `torch.save` zip (a state dict): `OrderedDict`, `_rebuild_tensor_v2` and the
 * storage types, with tensors left as references to the archive's raw storages.
 *
 * A pickle is a program for a stack machine that may import and call any Python function.
 * This reader runs none of it: it accepts only the opcodes those files use, and only the
 * globals numpy needs to describe an array (`_reconstruct`, `ndarray`, `dtype`) plus
 * `_codecs.encode` / `bytes` (how Python 3 writes bytes under protocol 2). Each of those is
 * re-implemented here as a pure data constructor. Any other opcode or global is an error
 * naming the file and the byte offset; nothing in a data file is ever executed.
 *
 * Memory is bounded by the file: every byte decoded (strings, bytes, `_codecs.encode`
 * results), every container item and every live stack slot and MARK is charged against one
 * budget, by default 4 × the file size + 64 MiB, so a small file cannot expand without end
 * (e.g. by encoding one memoised string again and again, or by millions of MARKs).
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
  /** Instance attributes set by BUILD (torch state dicts carry `_metadata`). */
  attributes: PyDict | undefined;
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

/** Element types of torch storages, by the storage class a pickle names. */
export const TORCH_STORAGE_DTYPES = {
  FloatStorage: 'float32',
  DoubleStorage: 'float64',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
} as const;
export type TorchDtype = (typeof TORCH_STORAGE_DTYPES)[keyof typeof TORCH_STORAGE_DTYPES];

/** A torch storage named by a persistent id: the archive entry `data/<key>` holds its bytes. */
export interface TorchStorageRef {
  readonly kind: 'torch-storage';
  readonly dtype: TorchDtype;
  readonly key: string;
  readonly location: string;
  /** Elements (not bytes) the storage holds. */
  readonly numel: number;
}

/** A tensor as `_rebuild_tensor_v2` describes it: a strided view of a storage (in elements). */
export interface TorchTensorRef {
  readonly kind: 'torch-tensor';
  readonly storage: TorchStorageRef;
  readonly offset: number;
  readonly shape: readonly number[];
  readonly stride: readonly number[];
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
  | NdArray
  | TorchStorageRef
  | TorchTensorRef;

export interface PickleLimits {
  /** Largest single bytes/str object (default 2 GiB: an ImageNet32 train batch is ~394 MB). */
  readonly maxObjectBytes?: number;
  /** Largest text string (default 64 MiB; Python 3 protocol 2 writes bytes as latin-1 text). */
  readonly maxTextBytes?: number;
  readonly maxMemo?: number;
  readonly maxStack?: number;
  /** Items in one list/dict/tuple (default 10M). */
  readonly maxItems?: number;
  /**
   * Bytes the whole unpickling may produce: decoded strings and bytes, container items and
   * live stack slots and MARKs (default 4 × the file size + 64 MiB).
   */
  readonly maxBudgetBytes?: number;
}

/** Which globals a pickle may name: numpy data batches, or a torch state dict. */
export type PickleProfile = 'numpy' | 'torch';

export interface PickleOptions extends PickleLimits {
  /** Default 'numpy' (CIFAR / ImageNet32 batches). */
  readonly profile?: PickleProfile;
}

const DEFAULT_LIMITS: Required<Omit<PickleLimits, 'maxBudgetBytes'>> = {
  maxObjectBytes: 2 ** 31,
  maxTextBytes: 64 * 2 ** 20,
  maxMemo: 2_000_000,
  maxStack: 2_000_000,
  maxItems: 10_000_000,
};

/** The default budget for a file of `size` bytes (see `PickleLimits.maxBudgetBytes`). */
export function defaultPickleBudget(size: number): number {
  return 4 * size + 64 * 2 ** 20;
}

/** Budget charged per live stack slot or MARK, and per container item (a JS array slot with growth slack). */
const SLOT_BYTES = 16;
const ITEM_BYTES = 8;

function resolveOptions(options: PickleOptions, size: number): ResolvedOptions {
  return {
    ...DEFAULT_LIMITS,
    ...options,
    maxBudgetBytes: options.maxBudgetBytes ?? defaultPickleBudget(size),
    profile: options.profile ?? 'numpy',
  };
}

type ResolvedOptions = Required<PickleOptions>;

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
export function unpickle(
  bytes: Uint8Array,
  name: string,
  options: PickleOptions = {},
): PickleValue {
  return new Unpickler(new BufferInput(name, bytes), resolveOptions(options, bytes.length)).run();
}

/**
 * Unpickle a file without loading its big objects: bytes/str objects of at least
 * `lazyBytes` (default 1 MiB) come back as `LazyBytes` (read them with `readLazy`).
 */
export function unpickleFile(
  path: string,
  options: PickleOptions & { lazyBytes?: number } = {},
): PickleValue {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    throw new DatasetError(`Cannot open pickle ${path}: ${(error as Error).message}.`);
  }
  try {
    const input = new FileInput(path, fd, options.lazyBytes ?? FILE_CHUNK);
    return new Unpickler(input, resolveOptions(options, input.size)).run();
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
  constructor(
    readonly fullName: string,
    readonly role: GlobalRole,
  ) {}
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

/** The globals each profile may name, and what each stands for (a pure data constructor). */
const NUMPY_GLOBALS = {
  'numpy.core.multiarray._reconstruct': 'reconstruct',
  'numpy._core.multiarray._reconstruct': 'reconstruct',
  'numpy.core.numeric._frombuffer': 'frombuffer',
  'numpy._core.numeric._frombuffer': 'frombuffer',
  'numpy.ndarray': 'ndarray',
  'numpy.dtype': 'dtype',
  '_codecs.encode': 'encode',
  '__builtin__.bytes': 'bytes',
  'builtins.bytes': 'bytes',
} as const;

const TORCH_GLOBALS = {
  'collections.OrderedDict': 'ordereddict',
  'torch._utils._rebuild_tensor_v2': 'rebuild_tensor',
  'torch._utils._rebuild_parameter': 'rebuild_parameter',
  ...Object.fromEntries(Object.keys(TORCH_STORAGE_DTYPES).map((k) => [`torch.${k}`, 'storage'])),
} as Record<string, 'ordereddict' | 'rebuild_tensor' | 'rebuild_parameter' | 'storage'>;

type GlobalRole =
  | (typeof NUMPY_GLOBALS)[keyof typeof NUMPY_GLOBALS]
  | 'ordereddict'
  | 'rebuild_tensor'
  | 'rebuild_parameter'
  | 'storage';

const PROFILE_GLOBALS: Record<PickleProfile, Record<string, GlobalRole>> = {
  numpy: NUMPY_GLOBALS,
  torch: TORCH_GLOBALS,
};

const PROFILE_WHAT: Record<PickleProfile, string> = {
  numpy: 'Only CIFAR/ImageNet32 data pickles are accepted',
  torch: 'Only state dicts of tensors (torch.save of a state_dict) are accepted',
};

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
  BYTEARRAY8: 0x96,
  NEXT_BUFFER: 0x97,
  READONLY_BUFFER: 0x98,
  BINPERSID: 0x51,
  PERSID: 0x50,
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
  /** Budget spent on decoded bytes and container items (live stack and marks come on top). */
  private produced = 0;

  constructor(
    private readonly input: ByteInput,
    private readonly limits: ResolvedOptions,
  ) {}

  private fail(why: string): never {
    throw new PickleError(
      `Pickle ${this.input.name}, opcode at byte ${this.opPos}: ${why}. ${PROFILE_WHAT[this.limits.profile]}; this file was refused and nothing in it was run.`,
    );
  }

  /** Charge `bytes` of new memory against the per-file budget. */
  private charge(bytes: number): void {
    this.produced += bytes;
    this.checkBudget();
  }

  private checkBudget(): void {
    const used = this.produced + SLOT_BYTES * (this.stack.length + this.marks.length);
    if (used > this.limits.maxBudgetBytes) {
      this.fail(
        `needs more than ${this.limits.maxBudgetBytes} bytes of memory to unpickle (${this.produced} bytes decoded, ${this.stack.length} stack items, ${this.marks.length} MARKs) — more than a ${this.input.size}-byte file can honestly hold`,
      );
    }
  }

  private push(item: StackItem): void {
    if (this.stack.length >= this.limits.maxStack)
      this.fail(`stack exceeds ${this.limits.maxStack} items`);
    this.stack.push(item);
    if ((this.stack.length & 0xfff) === 0) this.checkBudget();
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
    const out = this.input.takeLarge(n);
    if (out instanceof Uint8Array) this.charge(n);
    return out;
  }

  private text(n: number): string {
    if (n > this.limits.maxTextBytes)
      this.fail(`declares a ${n}-byte string, over the ${this.limits.maxTextBytes}-byte limit`);
    this.charge(n);
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
    const table = PROFILE_GLOBALS[this.limits.profile];
    if (!Object.hasOwn(table, full)) {
      this.fail(`refers to the Python global '${full}', which a data file has no reason to use`);
    }
    return new GlobalRef(full, table[full]);
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

  private tuple(items: PickleValue[]): PyTuple {
    this.charge(ITEM_BYTES * items.length);
    return new PyTuple(items);
  }

  run(): PickleValue {
    const input = this.input;
    for (;;) {
      this.opPos = input.pos;
      const op = input.byte();
      switch (op) {
        case OP.PROTO: {
          const version = input.byte();
          if (version < 2 || version > 5)
            this.fail(`uses pickle protocol ${version}; only 2–5 are accepted`);
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
          // MARKs share the stack's item limit (a mark list without a cap grew to 1.9 GB).
          if (this.stack.length + this.marks.length >= this.limits.maxStack)
            this.fail(`stack and MARKs exceed ${this.limits.maxStack} items`);
          this.marks.push(this.stack.length);
          if ((this.marks.length & 0xfff) === 0) this.checkBudget();
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
          this.push(this.tuple([]));
          break;
        case OP.TUPLE:
          this.push(this.tuple(this.popMark().map((x) => this.tupleItem(x))));
          break;
        case OP.TUPLE1:
        case OP.TUPLE2:
        case OP.TUPLE3: {
          const n = op - OP.TUPLE1 + 1;
          const items: PickleValue[] = [];
          for (let i = 0; i < n; i++) items.unshift(this.tupleItem(this.pop()));
          this.push(this.tuple(items));
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
        case OP.BYTEARRAY8: // protocol 5: a bytearray (numpy's in-band PickleBuffer)
          this.push(new PyBytes(this.bytesObject(this.u64())));
          break;
        case OP.BINPERSID: {
          // torch.save: ('storage', StorageType, key, location, numel) names data/<key>.
          const pid = this.pop();
          if (this.limits.profile !== 'torch')
            this.fail('uses a persistent id (BINPERSID), which data pickles never do');
          this.push(this.storageRef(pid));
          break;
        }
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
    if (!target.entries.has(k)) {
      this.checkItems(target.entries.size + 1);
      this.charge(2 * ITEM_BYTES);
    }
    target.entries.set(k, value);
  }

  private appendTo(target: StackItem, items: PickleValue[]): void {
    if (!Array.isArray(target)) this.fail('APPEND on something that is not a list');
    this.checkItems(target.length + items.length);
    this.charge(ITEM_BYTES * items.length);
    for (const item of items) target.push(item);
  }

  /** REDUCE: call a whitelisted global, re-implemented as a data constructor. */
  private reduce(callable: StackItem, args: StackItem): StackItem {
    if (!(callable instanceof GlobalRef))
      this.fail('calls (REDUCE) something that is not a permitted global');
    if (!(args instanceof PyTuple))
      this.fail(`calls ${callable.fullName} without an argument tuple`);
    const a = args.items;
    switch (callable.role) {
      case 'reconstruct': {
        // numpy: _reconstruct(ndarray, (0,), b'b') → an empty array filled in by BUILD.
        if (a.length !== 3 || !isNdarrayClass(a[0])) {
          this.fail('calls numpy _reconstruct with unexpected arguments');
        }
        return new PendingArray();
      }
      case 'frombuffer': {
        // numpy, protocol 5: _frombuffer(bytearray, dtype, shape, order) → a finished array.
        const [raw, dtypeItem, shapeItem, order] = a as unknown as StackItem[];
        if (a.length !== 4 || (order !== 'C' && order !== 'F'))
          this.fail('calls numpy _frombuffer with unexpected arguments');
        return this.ndarray(shapeItem, dtypeItem, order === 'F', raw);
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
        this.charge(text.length); // checked before allocating: a memoised string may be encoded again and again
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
      case 'ordereddict':
        // torch: OrderedDict() for the state dict itself and for empty backward-hook dicts.
        if (a.length !== 0)
          this.fail('calls OrderedDict with arguments; only OrderedDict() (empty) is accepted');
        return new PyDict();
      case 'rebuild_tensor':
        return this.tensorRef(a);
      case 'rebuild_parameter': {
        // _rebuild_parameter(data, requires_grad, backward_hooks): a Parameter is its data.
        const [data, requiresGrad, hooks] = a;
        if (
          a.length !== 3 ||
          !isTorchTensorRef(data) ||
          typeof requiresGrad !== 'boolean' ||
          !(hooks instanceof PyDict) ||
          hooks.entries.size !== 0
        )
          this.fail('calls torch _rebuild_parameter with unexpected arguments');
        return data;
      }
      default: // 'ndarray' and the storage types
        this.fail(`calls ${callable.fullName}, which may only be passed as an argument`);
    }
  }

  /** BINPERSID's id: ('storage', torch.<Type>Storage, key, location, numel). */
  private storageRef(pid: StackItem): TorchStorageRef {
    const items = pid instanceof PyTuple ? (pid.items as unknown as StackItem[]) : [];
    const [tag, type, key, location, numel] = items;
    if (
      items.length !== 5 ||
      tag !== 'storage' ||
      !(type instanceof GlobalRef) ||
      type.role !== 'storage' ||
      typeof key !== 'string' ||
      !/^[0-9A-Za-z_]{1,64}$/.test(key) ||
      typeof location !== 'string' ||
      typeof numel !== 'number' ||
      !Number.isSafeInteger(numel) ||
      numel < 0
    ) {
      this.fail(
        "has a persistent id that is not ('storage', torch.<Type>Storage, key, location, numel)",
      );
    }
    const typeName = type.fullName.slice('torch.'.length) as keyof typeof TORCH_STORAGE_DTYPES;
    return {
      kind: 'torch-storage',
      dtype: TORCH_STORAGE_DTYPES[typeName],
      key,
      location,
      numel,
    };
  }

  /**
   * _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks[, metadata]):
   * checked here so that every element the view reaches lies inside the storage.
   */
  private tensorRef(a: readonly PickleValue[]): TorchTensorRef {
    const [storage, offset, size, stride, requiresGrad, hooks, metadata] = a;
    const ints = (t: PickleValue): t is PyTuple =>
      t instanceof PyTuple &&
      t.items.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0);
    if (
      (a.length !== 6 && a.length !== 7) ||
      !isTorchStorageRef(storage) ||
      typeof offset !== 'number' ||
      !Number.isSafeInteger(offset) ||
      offset < 0 ||
      !ints(size) ||
      !ints(stride) ||
      size.items.length !== stride.items.length ||
      typeof requiresGrad !== 'boolean' ||
      !(hooks instanceof PyDict) ||
      hooks.entries.size !== 0 ||
      (a.length === 7 && !(metadata instanceof PyDict))
    ) {
      this.fail('calls torch _rebuild_tensor_v2 with unexpected arguments');
    }
    const shape = size.items as number[];
    const strides = stride.items as number[];
    if (shape.length > 8) this.fail(`makes a tensor of ${shape.length} dimensions`);
    const elements = shape.reduce((x, y) => x * y, 1);
    if (elements > 0) {
      let last = offset; // the furthest element the view reaches
      for (let d = 0; d < shape.length; d++) last += (shape[d] - 1) * strides[d];
      if (!Number.isSafeInteger(last) || last >= storage.numel) {
        this.fail(
          `makes a tensor of shape (${shape.join(', ')}), stride (${strides.join(', ')}) at offset ${offset} that reaches element ${last} of a ${storage.numel}-element storage`,
        );
      }
    }
    return { kind: 'torch-tensor', storage, offset, shape, stride: strides };
  }

  /** A numpy array from its shape tuple, built dtype, order and raw bytes, all checked. */
  private ndarray(
    shapeItem: StackItem,
    dtypeItem: StackItem,
    fortran: boolean,
    raw: StackItem,
  ): NdArray {
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
    if (fortran && shape.filter((d) => d > 1).length > 1) {
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
    return {
      kind: 'ndarray',
      dtype: { kind: dtypeItem.kind, itemSize: dtypeItem.itemSize, littleEndian },
      shape,
      data: raw.bytes,
    };
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
      target.built = this.ndarray(shapeItem, dtypeItem, fortran !== false && fortran !== 0, raw);
      return;
    }
    if (target instanceof PyDict && this.limits.profile === 'torch') {
      // A state dict's attributes ({'_metadata': OrderedDict of module versions}): kept aside.
      if (!(state instanceof PyDict) || target.attributes)
        this.fail('gives a dict a state that is not one dict of attributes');
      target.attributes = state;
      return;
    }
    this.fail('BUILD on something other than a numpy array or dtype');
  }
}

export function isTorchStorageRef(x: unknown): x is TorchStorageRef {
  return typeof x === 'object' && x !== null && (x as TorchStorageRef).kind === 'torch-storage';
}

export function isTorchTensorRef(x: unknown): x is TorchTensorRef {
  return typeof x === 'object' && x !== null && (x as TorchTensorRef).kind === 'torch-tensor';
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
  if (isTorchTensorRef(value)) return `torch tensor of shape (${value.shape.join(', ')})`;
  if (isTorchStorageRef(value)) return 'torch storage';
  return typeof value;
}
