import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { crc32 } from 'node:zlib';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  backbone,
  checkPretrainedFile,
  checkTorchStateDict,
  createNetwork,
  initBackend,
  loadPretrainedBackbone,
  readSafetensors,
  readStateDict,
  readTorchStateDict,
  type NetworkSpec,
} from '../src/index.js';

const FIX = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');
const PTH = path.join(FIX, 'resnet18-w8-standard.pth');
const IO = path.join(FIX, 'resnet18-w8-pth-io.safetensors');
const DTYPES = path.join(FIX, 'state-dict-dtypes.pth');
const HOSTILE = path.join(FIX, 'hostile-os-system.pth');

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(path.join(tmpdir(), 'maskcon-pth-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Pooled eval-mode features of a torchvision-layout ResNet loaded from `file`, for NCHW `x`. */
function features(spec: NetworkSpec, file: string, x: { shape: number[]; data: Float32Array }) {
  const p = createNetwork(spec, 3);
  const report = loadPretrainedBackbone(p, file);
  const got = tf.tidy(() => {
    const input = tf.transpose(
      tf.tensor4d(x.data, x.shape as [number, number, number, number]),
      [0, 2, 3, 1],
    );
    return backbone(p, input as tf.Tensor4D, { training: false, bnSplits: 1 });
  });
  const out = got.dataSync() as Float32Array;
  got.dispose();
  p.dispose();
  return { out, report };
}

describe('.pth state dicts written by torch.save (fixtures from scripts/gen-pth-fixture.py)', () => {
  it('reads every storage type, strided views, storage offsets and shared storages', () => {
    const want = JSON.parse(readFileSync(path.join(FIX, 'state-dict-dtypes.json'), 'utf8'))
      .tensors as Record<string, { dtype: string; shape: number[]; values: number[] }>;
    const got = readTorchStateDict(DTYPES);
    expect([...got.keys()]).toEqual(Object.keys(want));
    for (const [name, w] of Object.entries(want)) {
      const t = got.get(name)!;
      expect(t.dtype, name).toBe(w.dtype);
      expect(t.shape, name).toEqual(w.shape);
      const values = Array.from(t.data as ArrayLike<number | bigint>, Number);
      if (w.dtype === 'float32' || w.dtype === 'float64') {
        // float64 is narrowed to float32, as the safetensors reader does
        expect(maxAbsDiff(values, w.values), name).toBeLessThanOrEqual(
          w.dtype === 'float64' ? 1e-7 : 0,
        );
      } else expect(values, name).toEqual(w.values);
    }
    // The slice [3:9:2] of a shared storage, and the transposed view, are gathered in C order.
    expect(want['shared.slice'].values).toEqual(
      [3, 5, 7].map((i) => want['shared.base'].values[i]),
    );
    expect(Array.from(got.get('transposed')!.data as Float32Array)).toEqual([
      0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11,
    ]);
  });

  for (const backend of ['cpu', 'wasm'] as const) {
    it(`loads a ResNet-18 (base width 8) whose features match PyTorch's on ${backend}`, async () => {
      await initBackend(backend, () => {});
      const io = readSafetensors(IO).tensors;
      const x = io.get('input')!;
      const want = io.get('features')!.data as Float32Array;
      const { out, report } = features(
        {
          arch: 'resnet18',
          width: 0,
          baseWidth: 8,
          inChannels: 3,
          stem: 'standard',
          projHidden: 4,
          projDim: 2,
        },
        PTH,
        { shape: x.shape, data: x.data as Float32Array },
      );
      expect(report.loaded.length).toBe(100);
      expect(report.ignored).toContain('fc.weight');
      const scale = Math.max(...want.map(Math.abs));
      const err = maxAbsDiff(out, want);
      console.log(
        `[pth] ${backend}: max |tfjs − torch| = ${err.toExponential(2)} (|features| ≤ ${scale.toFixed(2)})`,
      );
      expect(err).toBeLessThan(1e-4 * scale);
    });
  }

  it('detects the format by its magic: the same weights from .pth and .safetensors agree', () => {
    const pth = readStateDict(PTH).tensors;
    expect(pth.get('layer1.0.conv1.weight')!.shape).toEqual([8, 8, 3, 3]);
    expect(pth.get('layer1.0.bn1.num_batches_tracked')!.data).toBeInstanceOf(BigInt64Array);
    const st = readStateDict(path.join(FIX, 'resnet18-w8-small.safetensors')).tensors;
    expect(st.get('layer1.0.conv1.weight')!.shape).toEqual([8, 8, 3, 3]);
  });

  it('refuses a .pth whose pickle calls os.system, naming the global, and runs nothing', () => {
    const marker = '/tmp/maskcon-pth-hostile-ran';
    rmSync(marker, { force: true });
    let message = '';
    try {
      readStateDict(HOSTILE);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/refers to the Python global 'os\.system'/);
    expect(message).toContain(HOSTILE);
    expect(message).toMatch(/nothing in it was run/);
    expect(existsSync(marker)).toBe(false);
  });

  it('checks a file before any work without reading its tensors', () => {
    const shapes = checkTorchStateDict(PTH);
    expect(shapes.size).toBe(122); // 20 convs, 20 BN × 5 (3 buffers), fc weight + bias
    expect(shapes.get('conv1.weight')).toEqual([8, 3, 7, 7]);
    expect(() => checkPretrainedFile(HOSTILE)).toThrow(/'os\.system'/);
    expect(() =>
      checkPretrainedFile(path.join(FIX, 'resnet18-w8-small.safetensors')),
    ).not.toThrow();
  });

  it('refuses storages whose size or views do not fit, and missing storages', () => {
    // Rewrite one byte range of a copy: the numel of the first storage ('0' in data.pkl).
    const bytes = readFileSync(DTYPES);
    const pklAt = bytes.indexOf(Buffer.from('data.pkl')) + 'data.pkl'.length;
    // The float32 2×3 tensor: persistent id (... '0', 'cpu', 6): BININT1 6 → 5.
    const idAt = bytes.indexOf(Buffer.from([0x58, 3, 0, 0, 0, 0x63, 0x70, 0x75]), pklAt);
    expect(idAt).toBeGreaterThan(0);
    const numelAt = idAt + 8 + 2 + 1; // after 'cpu' and its BINPUT: K <numel>
    expect(bytes[numelAt - 1]).toBe(0x4b);
    expect(bytes[numelAt]).toBe(6);
    const bad = Buffer.from(bytes);
    bad[numelAt] = 5; // the 2×3 view now reaches beyond its storage
    // zip CRC of data.pkl would catch the edit first: recompute it in the copy
    const file = path.join(tmp, 'short-storage.pth');
    writeFileSync(file, fixCrc(bad, 'data.pkl'));
    expect(() => readTorchStateDict(file)).toThrow(
      /tensor of shape \(2, 3\), stride \(3, 1\) at offset 0 that reaches element 5 of a 5-element storage/,
    );
  });
});

/** Recompute the CRC-32 of the (stored) entry ending in `suffix` in the central directory. */
function fixCrc(zip: Buffer, suffix: string): Buffer {
  for (let c = zip.indexOf('PK\x01\x02'); c >= 0; c = zip.indexOf('PK\x01\x02', c + 4)) {
    const n = zip.readUInt16LE(c + 28);
    if (
      !zip
        .subarray(c + 46, c + 46 + n)
        .toString()
        .endsWith(suffix)
    )
      continue;
    const size = zip.readUInt32LE(c + 20);
    const local = zip.readUInt32LE(c + 42);
    const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    zip.writeUInt32LE(crc32(zip.subarray(start, start + size)) >>> 0, c + 16);
    return zip;
  }
  throw new Error(`no entry ${suffix}`);
}

const python = '/usr/bin/python3';
const hasTorch =
  existsSync(python) &&
  spawnSync(python, ['-c', 'import torch, torchvision'], { stdio: 'ignore' }).status === 0;
if (!hasTorch)
  console.warn(
    `SKIPPED the torch.save check: ${python} cannot import torch and torchvision (apt-get install python3-torchvision; scripts/install.sh --with-test-deps and .ci/run do this).`,
  );

describe('full-size torchvision ResNet-18 from a .pth made by PyTorch at test time', () => {
  it.skipIf(!hasTorch)(
    'torchvision.models.resnet18() saved with torch.save: features within 1e-4 of scale',
    async () => {
      const file = path.join(tmp, 'resnet18.pth');
      const io = path.join(tmp, 'resnet18-io.json');
      execFileSync(
        python,
        [
          '-c',
          `
import json, sys, torch, torchvision
torch.manual_seed(0)
m = torchvision.models.resnet18()
g = torch.Generator().manual_seed(1)
for mod in m.modules():
    if isinstance(mod, torch.nn.BatchNorm2d):
        with torch.no_grad():
            mod.weight.copy_(0.5 + torch.rand(mod.weight.shape, generator=g))
            mod.bias.copy_(0.2 * torch.randn(mod.bias.shape, generator=g))
            mod.running_mean.copy_(0.1 * torch.randn(mod.running_mean.shape, generator=g))
            mod.running_var.copy_(0.5 + torch.rand(mod.running_var.shape, generator=g))
m.eval()
x = torch.randn(1, 3, 224, 224, generator=g)
with torch.no_grad():
    h = m.maxpool(m.relu(m.bn1(m.conv1(x))))
    f = torch.flatten(m.avgpool(m.layer4(m.layer3(m.layer2(m.layer1(h))))), 1)
torch.save(m.state_dict(), sys.argv[1])
json.dump({'x': x.reshape(-1).tolist(), 'f': f.reshape(-1).tolist()}, open(sys.argv[2], 'w'))
`,
          file,
          io,
        ],
        { stdio: 'inherit' },
      );
      const ref = JSON.parse(readFileSync(io, 'utf8')) as { x: number[]; f: number[] };
      await initBackend('wasm', () => {});
      const { out, report } = features(
        {
          arch: 'resnet18',
          width: 0,
          baseWidth: 64,
          inChannels: 3,
          stem: 'standard',
          projHidden: 4,
          projDim: 2,
        },
        file,
        { shape: [1, 3, 224, 224], data: Float32Array.from(ref.x) },
      );
      expect(report.loaded.length).toBe(100);
      const scale = Math.max(...ref.f.map(Math.abs));
      const err = maxAbsDiff(out, ref.f);
      console.log(
        `[pth] full ResNet-18 224 px (wasm): max |tfjs − torch| = ${err.toExponential(2)} (|features| ≤ ${scale.toFixed(2)})`,
      );
      expect(err).toBeLessThan(1e-4 * scale);
    },
    180_000,
  );
});
