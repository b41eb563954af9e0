import { loadNative } from '@maskcon/native';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  PretrainedMismatchError,
  backbone,
  bf16ToF32,
  createNetwork,
  encodeSafetensors,
  f16ToF32,
  f32ToBf16,
  f32ToF16,
  initBackend,
  loadPretrainedBackbone,
  parseSafetensors,
  readSafetensors,
  saveBackboneSafetensors,
  writeSafetensors,
  type NetworkSpec,
  type SafetensorsInput,
  type StemName,
} from '../src/index.js';

const FIX = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');
const SMALL = path.join(FIX, 'resnet18-w8-small.safetensors');
const STANDARD = path.join(FIX, 'resnet18-w8-standard.safetensors');
const IO = path.join(FIX, 'resnet18-w8-io.safetensors');

const spec = (stem: StemName): NetworkSpec => ({
  arch: 'resnet18',
  width: 0,
  baseWidth: 8,
  inChannels: 3,
  stem,
  projHidden: 4,
  projDim: 2,
});

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(path.join(tmpdir(), 'maskcon-pretrained-'));
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

/** NCHW host tensor from the fixture → NHWC tfjs tensor. */
function nhwc(name: string): tf.Tensor4D {
  const t = readSafetensors(IO).tensors.get(name)!;
  return tf.transpose(
    tf.tensor4d(t.data as Float32Array, t.shape as [number, number, number, number]),
    [0, 2, 3, 1],
  );
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function features(stem: StemName, file: string): { got: Float32Array; want: Float32Array } {
  const p = createNetwork(spec(stem), 5);
  const report = loadPretrainedBackbone(p, file);
  // 20 convs + 20 BN × (2 params + 2 buffers); fc.* and 20 num_batches_tracked are ignored
  expect(report.loaded.length).toBe(60 + 40);
  expect(report.ignored).toContain('fc.weight');
  expect(report.ignored).toContain('layer4.1.bn2.num_batches_tracked');
  expect(report.metadata.stem).toBe(stem);
  const got = tf.tidy(() => backbone(p, nhwc(`input_${stem}`), { training: false, bnSplits: 1 }));
  expect(got.shape).toEqual([2, 64]);
  const out = {
    got: got.dataSync() as Float32Array,
    want: readSafetensors(IO).tensors.get(`features_${stem}`)!.data as Float32Array,
  };
  got.dispose();
  p.dispose();
  return out;
}

describe('pretrained ResNet-18 reproduces PyTorch (fixture from scripts/gen-resnet18-fixture.py)', () => {
  for (const backend of ['cpu', 'wasm', 'native'] as const) {
    // 'native' (oneDNN kernels on the wasm heap) only where the addon was built.
    it.skipIf(backend === 'native' && !loadNative().ok)(
      `small and standard stem on ${backend}`,
      async () => {
        await initBackend(backend, () => {});
        for (const [stem, file] of [
          ['small', SMALL],
          ['standard', STANDARD],
        ] as const) {
          const { got, want } = features(stem, file);
          const err = maxAbsDiff(got, want);
          console.log(
            `[pretrained] ${backend} ${stem} stem: max |tfjs − torch| = ${err.toExponential(2)} (|features| ≤ ${Math.max(...want.map(Math.abs)).toFixed(2)})`,
          );
          expect(err).toBeLessThan(1e-4);
        }
      },
    );
  }

  it('round-trips through saveBackboneSafetensors', async () => {
    await initBackend('cpu', () => {});
    const a = createNetwork(spec('small'), 1);
    loadPretrainedBackbone(a, SMALL);
    const out = path.join(tmp, 'roundtrip.safetensors');
    saveBackboneSafetensors(a, out, { metadata: { note: 'x' } });
    const b = createNetwork({ ...spec('small'), classifierClasses: 3 }, 2);
    loadPretrainedBackbone(b, out);
    for (const [n, v] of a.snapshot())
      if (!n.startsWith('projector.')) expect(maxAbsDiff(b.get(n).dataSync(), v)).toBe(0);
    expect(readSafetensors(out).metadata).toEqual({ note: 'x' });
    a.dispose();
    b.dispose();
  });
});

describe('loadPretrainedBackbone errors', () => {
  beforeAll(async () => {
    await initBackend('cpu', () => {});
  });

  function variant(name: string, edit: (m: Map<string, SafetensorsInput>) => void): string {
    const m = new Map<string, SafetensorsInput>();
    for (const [n, t] of readSafetensors(SMALL).tensors) m.set(n, t);
    edit(m);
    const f = path.join(tmp, `${name}.safetensors`);
    writeSafetensors(f, m);
    return f;
  }

  it('lists every missing, unexpected and mismatched tensor and leaves the model untouched', () => {
    const f = variant('bad', (m) => {
      m.delete('layer2.0.downsample.1.running_var');
      m.delete('layer3.1.conv2.weight');
      m.set('layer5.0.conv1.weight', { dtype: 'F32', shape: [1, 1, 1, 1], data: [1] });
      m.set('layer1.0.bn1.weight', { dtype: 'F32', shape: [9], data: new Float32Array(9) });
      m.set('layer4.1.conv1.weight', {
        dtype: 'F32',
        shape: [64, 64, 1, 1],
        data: new Float32Array(64 * 64),
      });
    });
    const p = createNetwork(spec('small'), 5);
    const before = p.snapshot();
    let err: unknown;
    try {
      loadPretrainedBackbone(p, f);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PretrainedMismatchError);
    const e = err as PretrainedMismatchError;
    expect(e.message).toContain(f);
    expect(e.message).toContain(
      'missing from the file (2): layer3.1.conv2.weight, layer2.0.downsample.1.running_var',
    );
    expect(e.message).toContain('unexpected in the file (1): layer5.0.conv1.weight [1, 1, 1, 1]');
    expect(e.message).toContain(
      'shape mismatch (2): layer1.0.bn1.weight file [9] vs model [8], layer4.1.conv1.weight file [64, 64, 1, 1] vs model [64, 64, 3, 3]',
    );
    expect(e.missing).toEqual(['layer3.1.conv2.weight', 'layer2.0.downsample.1.running_var']);
    expect(e.unexpected).toEqual(['layer5.0.conv1.weight']);
    expect(e.mismatched.map((x) => x.name)).toEqual([
      'layer1.0.bn1.weight',
      'layer4.1.conv1.weight',
    ]);
    for (const [n, v] of before) expect(maxAbsDiff(p.get(n).dataSync(), v)).toBe(0);
    p.dispose();
  });

  it('refuses weights holding a NaN or Inf, naming the file and the first bad tensor, and leaves the model untouched', () => {
    const name = 'layer2.0.bn1.running_mean';
    let length = 0;
    const f = variant('inf', (m) => {
      const t = m.get(name)!;
      const data = Float32Array.from(t.data as Float32Array);
      data[1] = Number.POSITIVE_INFINITY;
      length = data.length;
      m.set(name, { ...t, data });
    });
    const p = createNetwork(spec('small'), 5);
    const before = p.snapshot();
    expect(() => loadPretrainedBackbone(p, f)).toThrow(
      `${f}: tensor ${name} holds Infinity (element 1 of ${length}); the weights are damaged`,
    );
    for (const [n, v] of before) expect(maxAbsDiff(p.get(n).dataSync(), v)).toBe(0);
    p.dispose();
  });

  it('explains the stem mismatch and can skip conv1 explicitly', () => {
    const p = createNetwork(spec('small'), 5);
    expect(() => loadPretrainedBackbone(p, STANDARD)).toThrow(
      /conv1\.weight file \[8, 3, 7, 7\] vs model \[8, 3, 3, 3\][\s\S]*standard 7×7 stem conv, which cannot load into the small-image 3×3 stem: use --stem standard/,
    );
    const conv1 = p.get('conv1.weight').dataSync().slice();
    const r = loadPretrainedBackbone(p, STANDARD, { skipMismatchedStem: true });
    expect(r.skipped).toEqual(['conv1.weight']);
    expect(r.loaded).toContain('bn1.running_mean');
    expect(maxAbsDiff(p.get('conv1.weight').dataSync(), conv1)).toBe(0);
    p.dispose();
    const q = createNetwork(spec('standard'), 5);
    expect(() => loadPretrainedBackbone(q, SMALL)).toThrow(/use --stem small/);
    q.dispose();
  });

  it('strips a prefix and ignores other names', () => {
    const f = variant('prefixed', (m) => {
      const entries = [...m];
      m.clear();
      for (const [n, t] of entries) m.set(`module.encoder_q.${n}`, t);
      m.set('module.queue', { dtype: 'F32', shape: [2], data: [0, 0] });
    });
    const p = createNetwork(spec('small'), 5);
    expect(() => loadPretrainedBackbone(p, f)).toThrow(/missing from the file \(100\)/);
    const r = loadPretrainedBackbone(p, f, { prefix: 'module.encoder_q.' });
    expect(r.loaded.length).toBe(100);
    expect(r.ignored).toContain('module.queue');
    p.dispose();
  });
});

describe('safetensors reader and writer', () => {
  const good = (): Uint8Array =>
    encodeSafetensors({
      a: { dtype: 'F32', shape: [2], data: [1, 2] },
      b: { dtype: 'I64', shape: [], data: [7] },
    });

  /** A file with a hand-written header and `data` bytes. */
  function raw(header: unknown, dataBytes: number, headerLen?: number): Uint8Array {
    const h = new TextEncoder().encode(JSON.stringify(header));
    const out = new Uint8Array(8 + h.length + dataBytes);
    new DataView(out.buffer).setBigUint64(0, BigInt(headerLen ?? h.length), true);
    out.set(h, 8);
    return out;
  }

  it('round-trips all dtypes, metadata and shapes', () => {
    const f = path.join(tmp, 'all.safetensors');
    writeSafetensors(
      f,
      [
        ['f32', { dtype: 'F32', shape: [2, 2], data: [1.5, -2, 3e-8, 1e30] }],
        ['f64', { dtype: 'F64', shape: [2], data: [0.1, -7] }],
        ['f16', { dtype: 'F16', shape: [3], data: [0.1, 65504, -(2 ** -24)] }],
        ['bf16', { dtype: 'BF16', shape: [2], data: [1 / 3, -1e30] }],
        ['i32', { dtype: 'I32', shape: [2], data: [-5, 2 ** 31 - 1] }],
        ['i64', { dtype: 'I64', shape: [], data: new BigInt64Array([2n ** 40n]) }],
        ['empty', { dtype: 'F32', shape: [0, 3], data: [] }],
      ],
      { framework: 'tfjs' },
    );
    expect(readdirSync(tmp).filter((n) => n.includes('.tmp-'))).toEqual([]);
    const r = readSafetensors(f);
    expect(r.metadata).toEqual({ framework: 'tfjs' });
    expect([...r.tensors.keys()]).toEqual(['f32', 'f64', 'f16', 'bf16', 'i32', 'i64', 'empty']);
    expect(Array.from(r.tensors.get('f32')!.data as Float32Array)).toEqual([
      1.5,
      -2,
      Math.fround(3e-8),
      Math.fround(1e30),
    ]);
    expect(r.tensors.get('f32')!.shape).toEqual([2, 2]);
    expect(Array.from(r.tensors.get('f64')!.data as Float32Array)).toEqual([Math.fround(0.1), -7]);
    expect(Array.from(r.tensors.get('f16')!.data as Float32Array)).toEqual([
      0.0999755859375,
      65504,
      -(2 ** -24),
    ]);
    expect(Array.from(r.tensors.get('bf16')!.data as Float32Array)).toEqual([
      0.333984375,
      bf16ToF32(f32ToBf16(-1e30)),
    ]);
    expect(Array.from(r.tensors.get('i32')!.data as Int32Array)).toEqual([-5, 2 ** 31 - 1]);
    expect(r.tensors.get('i64')!.data).toEqual(new BigInt64Array([2n ** 40n]));
    expect(r.tensors.get('i64')!.shape).toEqual([]);
    // the header is padded to a multiple of 8 bytes
    expect(Number(new DataView(readFileSync(f).buffer).getBigUint64(0, true)) % 8).toBe(0);
  });

  it('converts float16 and bfloat16 with round-to-nearest-even', () => {
    expect(f32ToF16(1)).toBe(0x3c00);
    expect(f32ToF16(-2)).toBe(0xc000);
    expect(f32ToF16(65504)).toBe(0x7bff);
    expect(f32ToF16(65520)).toBe(0x7c00); // rounds up to +Inf
    expect(f32ToF16(2 ** -24)).toBe(1);
    expect(f32ToF16(2 ** -25)).toBe(0); // tie → even (0)
    expect(f32ToF16(3 * 2 ** -25)).toBe(2); // tie → even (2)
    expect(f32ToF16(1 + 2 ** -11)).toBe(0x3c00); // tie → even
    expect(f32ToF16(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(Number.isNaN(f16ToF32(f32ToF16(NaN)))).toBe(true);
    expect(f16ToF32(0x7c00)).toBe(Infinity);
    expect(f16ToF32(0x0001)).toBe(2 ** -24);
    expect(f16ToF32(0x3555)).toBeCloseTo(0.333251953125, 12);
    expect(f32ToBf16(1)).toBe(0x3f80);
    expect(bf16ToF32(0xc0490000 >>> 16)).toBe(-3.140625);
    expect(f32ToBf16(1 + 2 ** -8)).toBe(0x3f80); // tie → even
    expect(f32ToBf16(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(Number.isNaN(bf16ToF32(f32ToBf16(NaN)))).toBe(true);
  });

  it('rejects bad header lengths', () => {
    const b = good();
    const dv = new DataView(b.buffer);
    expect(() => parseSafetensors(b.subarray(0, 5), 'x.safetensors')).toThrow(
      /x\.safetensors: .*too short/,
    );
    dv.setBigUint64(0, 10n ** 12n, true);
    expect(() => parseSafetensors(b, 'x.safetensors')).toThrow(
      /x\.safetensors: .*header length 1000000000000 exceeds the limit of 100000000/,
    );
    dv.setBigUint64(0, BigInt(b.length), true);
    expect(() => parseSafetensors(b, 'x.safetensors')).toThrow(/runs past the end of the file/);
    dv.setBigUint64(0, 4n, true);
    expect(() => parseSafetensors(b, 'x.safetensors')).toThrow(/not valid JSON/);
    const f = path.join(tmp, 'trunc.safetensors');
    writeFileSync(f, b.subarray(0, 3));
    expect(() => readSafetensors(f)).toThrow(
      new RegExp(
        `${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: invalid safetensors file: 3 bytes is too short`,
      ),
    );
    expect(() => readSafetensors(path.join(tmp, 'nope.safetensors'))).toThrow(
      /nope\.safetensors: cannot read/,
    );
  });

  it('rejects offsets out of range, overlapping, with gaps or leaving trailing bytes', () => {
    const t = (o: [number, number]) => ({ dtype: 'F32', shape: [1], data_offsets: o });
    expect(() => parseSafetensors(raw({ w: t([0, 8]) }, 4), 'f')).toThrow(
      /tensor 'w': data_offsets \[0, 8\] out of range \(data buffer is 4 bytes\)/,
    );
    expect(() => parseSafetensors(raw({ w: t([4, 0]) }, 4), 'f')).toThrow(
      /tensor 'w': .*begin > end/,
    );
    expect(() => parseSafetensors(raw({ a: t([0, 4]), b: t([0, 4]) }, 4), 'f')).toThrow(
      /tensor 'b': data_offsets \[0, 4\] overlap/,
    );
    expect(() => parseSafetensors(raw({ a: t([4, 8]) }, 8), 'f')).toThrow(
      /tensor 'a': .*gap after byte 0/,
    );
    expect(() => parseSafetensors(raw({ a: t([0, 4]) }, 8), 'f')).toThrow(
      /covers 4 bytes but the data buffer has 8 \(trailing bytes\)/,
    );
    expect(() =>
      parseSafetensors(raw({ a: { dtype: 'F32', shape: [1], data_offsets: [0] } }, 4), 'f'),
    ).toThrow(/tensor 'a': data_offsets must be/);
  });

  it('rejects dtype/size mismatches, unknown and unsupported dtypes', () => {
    expect(() =>
      parseSafetensors(
        raw({ w: { dtype: 'F16', shape: [3], data_offsets: [0, 4] } }, 4),
        'm.safetensors',
      ),
    ).toThrow(
      /m\.safetensors: invalid safetensors file: tensor 'w': shape \[3\] × F16 \(2 bytes\) needs 6 bytes but data_offsets \[0, 4\] span 4/,
    );
    expect(() =>
      parseSafetensors(raw({ w: { dtype: 'F33', shape: [1], data_offsets: [0, 4] } }, 4), 'f'),
    ).toThrow(/tensor 'w': unknown dtype "F33"/);
    expect(() =>
      parseSafetensors(raw({ w: { dtype: 'U8', shape: [4], data_offsets: [0, 4] } }, 4), 'f'),
    ).toThrow(/tensor 'w' has dtype U8, which is not supported/);
    expect(() =>
      parseSafetensors(raw({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 4), 'f'),
    ).toThrow(/tensor 'w': shape must be/);
    expect(() => parseSafetensors(raw({ __metadata__: { a: 1 } }, 0), 'f')).toThrow(
      /__metadata__ value for 'a' is not a string/,
    );
    expect(() => parseSafetensors(raw([1, 2], 0), 'f')).toThrow(/does not start with/);
    expect(() => encodeSafetensors({ w: { dtype: 'F32', shape: [3], data: [1, 2] } })).toThrow(
      /tensor 'w': shape \[3\] has 3 elements but data has 2/,
    );
    // a valid minimal file and an empty one
    expect([...parseSafetensors(good()).tensors.keys()]).toEqual(['a', 'b']);
    expect(parseSafetensors(raw({}, 0)).tensors.size).toBe(0);
    expect(existsSync(path.join(tmp, 'nope.safetensors'))).toBe(false);
  });
});
