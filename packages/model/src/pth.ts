/**
 * torchvision's own `.pth` files: what `torch.save(state_dict, f)` writes since PyTorch 1.6, a
 * zip archive (entries stored, not compressed) under one top folder `<name>/`:
 *
 *   <name>/data.pkl      a pickle (protocol 2) of an OrderedDict name → tensor, each tensor
 *                        `_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)`
 *                        with its storage a persistent id ('storage', torch.FloatStorage, key,
 *                        location, numel)
 *   <name>/data/<key>    the raw bytes of each storage (numel × element size, little-endian)
 *   <name>/version, <name>/byteorder (newer files), …   small text entries
 *
 * The pickle goes through the project's restricted unpickler with the 'torch' profile: only
 * the globals above are accepted, anything else is refused by name and nothing is executed.
 * Each tensor's view (offset, size, stride) was checked against its storage's element count
 * when unpickled; here each storage entry must hold exactly numel × element-size bytes.
 */
import {
  DatasetError,
  isTorchTensorRef,
  listZip,
  PyDict,
  readZipEntrySync,
  unpickle,
  type TorchDtype,
  type TorchTensorRef,
  type ZipEntry,
} from '@maskcon/datasets';
import { bf16ToF32, f16ToF32 } from './safetensors.js';

/** One tensor of a state dict, decoded (as `SafetensorsTensor`: floats → float32). */
export interface StateDictTensor {
  /** The dtype as stored in the file (e.g. 'float32', 'int64', 'F16'). */
  dtype: string;
  shape: number[];
  /** Floats → Float32Array; int64 → BigInt64Array; other integers and bool → Int32Array. */
  data: Float32Array | Int32Array | BigInt64Array;
}

export class PthError extends Error {}

const ITEM_BYTES: Record<TorchDtype, number> = {
  float32: 4,
  float64: 8,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

/** Largest data.pkl accepted (a ResNet-50 state dict's is ~30 kB). */
const MAX_PICKLE_BYTES = 64 * 2 ** 20;

/** `PK\x03\x04`: a zip archive, as torch.save has written since PyTorch 1.6. */
export function isTorchZip(head: Uint8Array): boolean {
  return head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04;
}

/** The legacy (pre-1.6) torch.save format starts with a pickled magic number (LONG1 0x1950a86a20f9469cfc6c). */
export function isLegacyTorchSave(head: Uint8Array): boolean {
  return head[0] === 0x80 && head[1] === 0x02 && head[2] === 0x8a && head[3] === 0x0a;
}

/**
 * Checks a `torch.save` zip without reading its tensors: the archive, its pickle (globals,
 * views within their storages) and each storage entry's size. Cheap enough to run before any
 * work; returns each tensor's shape.
 */
export function checkTorchStateDict(file: string): Map<string, number[]> {
  const { refs, storageEntries } = openStateDict(file);
  const shapes = new Map<string, number[]>();
  for (const [name, ref] of refs) {
    storageEntry(file, name, ref, storageEntries);
    shapes.set(name, [...ref.shape]);
  }
  return shapes;
}

/** Reads a `torch.save` zip holding a state dict of tensors; errors name the file. */
export function readTorchStateDict(file: string): Map<string, StateDictTensor> {
  const { refs, storageEntries, read } = openStateDict(file);
  const storages = new Map<string, Buffer>();
  const out = new Map<string, StateDictTensor>();
  for (const [name, ref] of refs) {
    let bytes = storages.get(ref.storage.key);
    if (!bytes) {
      const entry = storageEntry(file, name, ref, storageEntries);
      bytes = read(entry, entry.size);
      storages.set(ref.storage.key, bytes);
    }
    out.set(name, gather(ref, bytes));
  }
  return out;
}

/** The storage entry of a tensor, which must hold exactly numel × element-size bytes. */
function storageEntry(
  file: string,
  name: string,
  ref: TorchTensorRef,
  entries: Map<string, ZipEntry>,
): ZipEntry {
  const s = ref.storage;
  const entry = entries.get(s.key);
  if (!entry)
    throw new PthError(
      `${file}: tensor '${name}' names storage ${s.key}, but there is no entry data/${s.key}.`,
    );
  const want = s.numel * ITEM_BYTES[s.dtype];
  if (entry.size !== want) {
    throw new PthError(
      `${file}: storage data/${s.key} holds ${entry.size} bytes but its ${s.numel} ${s.dtype} elements need ${want}; the file is corrupt.`,
    );
  }
  return entry;
}

/** The archive's entries and its unpickled state dict (tensor references, nothing read yet). */
function openStateDict(file: string): {
  refs: Map<string, TorchTensorRef>;
  storageEntries: Map<string, ZipEntry>;
  read: (e: ZipEntry, max: number) => Buffer;
} {
  const fail = (why: string): never => {
    throw new PthError(`${file}: ${why}`);
  };
  let entries: ZipEntry[];
  try {
    entries = listZip(file);
  } catch (error) {
    if (error instanceof DatasetError) fail(error.message);
    throw error;
  }
  const pkl = entries.find((e) => /^[^/]+\/data\.pkl$/.test(e.name));
  if (!pkl) fail('is a zip archive without <name>/data.pkl, so not a file torch.save wrote.');
  const root = pkl!.name.slice(0, -'data.pkl'.length);
  const byName = new Map<string, ZipEntry>();
  for (const e of entries) {
    if (!e.name.startsWith(root))
      fail(`has entry '${e.name}' outside its top folder '${root}' (not a torch.save archive).`);
    if (byName.has(e.name)) fail(`has two entries named '${e.name}'; refused.`);
    byName.set(e.name, e);
  }
  const read = (e: ZipEntry, max: number): Buffer => {
    try {
      return readZipEntrySync(file, e, max);
    } catch (error) {
      if (error instanceof DatasetError) fail(error.message);
      throw error;
    }
  };
  const order = byName.get(`${root}byteorder`);
  if (order) {
    const text = read(order, 16).toString('latin1').trim();
    if (text !== 'little')
      fail(`stores its tensors in '${text}' byte order; only little-endian files are read.`);
  }

  let value: unknown;
  try {
    value = unpickle(read(pkl!, MAX_PICKLE_BYTES), `${file} (${pkl!.name})`, {
      profile: 'torch',
    });
  } catch (error) {
    if (error instanceof DatasetError) fail(error.message);
    throw error;
  }
  if (!(value instanceof PyDict))
    fail('holds a pickled object that is not a state dict (an OrderedDict of tensors).');
  const dict = value as PyDict;
  const refs = new Map<string, TorchTensorRef>();
  const others: string[] = [];
  for (const [k, v] of dict.entries) {
    if (typeof k === 'string' && isTorchTensorRef(v)) refs.set(k, v);
    else others.push(String(k));
  }
  if (others.length) {
    fail(
      `is not a plain state dict: ${others.length} entries are not tensors (${others.slice(0, 5).join(', ')}${others.length > 5 ? ', …' : ''}). Save model.state_dict() itself (e.g. torch.save(checkpoint['state_dict'], f)).`,
    );
  }

  const storageEntries = new Map<string, ZipEntry>();
  for (const [name, e] of byName)
    if (name.startsWith(`${root}data/`)) storageEntries.set(name.slice(`${root}data/`.length), e);
  return { refs, storageEntries, read };
}

/** The elements a strided view reaches, in C order, decoded. Bounds were checked on unpickling. */
function gather(ref: TorchTensorRef, bytes: Buffer): StateDictTensor {
  const { shape, stride, offset } = ref;
  const dtype = ref.storage.dtype;
  const n = shape.reduce((a, b) => a * b, 1);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = ITEM_BYTES[dtype];
  const floats = dtype.startsWith('float') || dtype === 'bfloat16';
  const data =
    dtype === 'int64' ? new BigInt64Array(n) : floats ? new Float32Array(n) : new Int32Array(n);
  const idx = new Array<number>(shape.length).fill(0);
  let at = offset; // element index in the storage of the current position
  for (let i = 0; i < n; i++) {
    const o = at * size;
    switch (dtype) {
      case 'float32':
        (data as Float32Array)[i] = view.getFloat32(o, true);
        break;
      case 'float64':
        (data as Float32Array)[i] = view.getFloat64(o, true);
        break;
      case 'float16':
        (data as Float32Array)[i] = f16ToF32(view.getUint16(o, true));
        break;
      case 'bfloat16':
        (data as Float32Array)[i] = bf16ToF32(view.getUint16(o, true));
        break;
      case 'int64':
        (data as BigInt64Array)[i] = view.getBigInt64(o, true);
        break;
      case 'int32':
        (data as Int32Array)[i] = view.getInt32(o, true);
        break;
      case 'int16':
        (data as Int32Array)[i] = view.getInt16(o, true);
        break;
      case 'int8':
        (data as Int32Array)[i] = view.getInt8(o);
        break;
      case 'uint8':
      case 'bool':
        (data as Int32Array)[i] = view.getUint8(o);
        break;
    }
    // Advance the multi-index (last dimension fastest).
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d] < shape[d]) {
        at += stride[d];
        break;
      }
      at -= (shape[d] - 1) * stride[d];
      idx[d] = 0;
    }
  }
  return { dtype, shape: [...shape], data };
}
