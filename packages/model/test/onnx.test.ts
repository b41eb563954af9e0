import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  createNetwork,
  decodeOnnxModel,
  exportBackbone,
  initBackend,
  layersModelToOnnx,
  loadBackbone,
  ONNX_INPUT_NAME,
  ONNX_OUTPUT_NAME,
  readOnnxMetadata,
  registerFileUrlLoader,
  writeOnnxModel,
  type ExportMetadata,
  type NetworkSpec,
  type ParamStore,
} from '../src/index.js';

const here = dirname(fileURLToPath(import.meta.url));

beforeAll(async () => {
  await initBackend('wasm', () => {});
});

/** Random but realistic eval-mode statistics, so BatchNormalization is really exercised. */
function randomiseBuffers(p: ParamStore): void {
  for (const [n, v] of p.buffers)
    v.assign(
      tf.add(n.endsWith('running_var') ? 0.5 : -0.1, tf.randomUniform(v.shape, 0, 1, 'float32', 3)),
    );
  for (const [n, v] of p.trainable)
    if (n.endsWith('.bias') && v.shape.length === 1 && !n.startsWith('projector'))
      v.assign(tf.randomUniform(v.shape, -0.1, 0.5, 'float32', 4));
}

/** NHWC → NCHW, naive loop (independent of tf.transpose). */
function toNchw(x: Float32Array, n: number, h: number, w: number, c: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < n; i++)
    for (let y = 0; y < h; y++)
      for (let xx = 0; xx < w; xx++)
        for (let ch = 0; ch < c; ch++)
          out[((i * c + ch) * h + y) * w + xx] = x[((i * h + y) * w + xx) * c + ch];
  return out;
}

describe('ONNX export of the backbone, run in ONNX Runtime', () => {
  const cases: [string, NetworkSpec, [number, number, number]][] = [
    [
      'ResNet-18, small stem, 32 px',
      { arch: 'resnet18', width: 0, stem: 'small', inChannels: 3, projHidden: 8, projDim: 4 },
      [32, 32, 3],
    ],
    [
      'ResNet-50, standard stem (max-pool), 64 px',
      { arch: 'resnet50', width: 0, stem: 'standard', inChannels: 3, projHidden: 8, projDim: 4 },
      [64, 64, 3],
    ],
    [
      'resnet-mini, 1 channel, 28 px',
      { arch: 'resnet-mini', width: 8, inChannels: 1, projHidden: 8, projDim: 4 },
      [28, 28, 1],
    ],
  ];
  for (const [label, spec, shape] of cases) {
    it(`matches the TF.js backbone: ${label}`, async () => {
      const p = createNetwork(spec, 11);
      randomiseBuffers(p);
      const dir = join(mkdtempSync(join(tmpdir(), 'maskcon-onnx-')), 'model');
      const meta: ExportMetadata = {
        arch: spec.arch,
        inputShape: shape,
        mean: shape[2] === 3 ? [0.485, 0.456, 0.406] : [0.286],
        std: shape[2] === 3 ? [0.229, 0.224, 0.225] : [0.353],
      };
      await exportBackbone(p, dir, meta);
      const { model } = await loadBackbone(dir);
      const bytes = layersModelToOnnx(model, meta);
      const file = join(dir, 'model.onnx');
      writeOnnxModel(file, bytes);

      // The written file describes itself.
      const decoded = decodeOnnxModel(readFileSync(file));
      expect(decoded.opset).toBeGreaterThanOrEqual(13);
      expect(decoded.producerName).toBe('@maskcon/model');
      const dim = (model.outputs[0].shape as number[])[1];
      expect(decoded.inputs).toEqual([
        { name: ONNX_INPUT_NAME, dims: ['batch', shape[2], shape[0], shape[1]] },
      ]);
      expect(decoded.outputs).toEqual([{ name: ONNX_OUTPUT_NAME, dims: ['batch', dim] }]);
      expect(decoded.metadata.input_layout).toBe('NCHW');
      expect(JSON.parse(decoded.metadata.mean)).toEqual(meta.mean);
      expect(JSON.parse(decoded.metadata.std)).toEqual(meta.std);
      expect(readOnnxMetadata(file)).toEqual(meta);
      if (spec.stem === 'standard') expect(decoded.opTypes).toContain('MaxPool');
      // Every conv's zero padding is folded into the conv; the max-pool keeps a Pad node.
      expect(decoded.opTypes.filter((o) => o === 'Pad').length).toBe(
        spec.stem === 'standard' ? 1 : 0,
      );

      const n = 3;
      const [h, w, c] = shape;
      const x = tf.randomNormal([n, h, w, c], 0, 1, 'float32', 9) as tf.Tensor4D;
      const want = (model.predict(x) as tf.Tensor).dataSync() as Float32Array;
      const session = await ort.InferenceSession.create(file, {
        graphOptimizationLevel: 'all',
        intraOpNumThreads: 1,
      });
      const input = new ort.Tensor('float32', toNchw(x.dataSync() as Float32Array, n, h, w, c), [
        n,
        c,
        h,
        w,
      ]);
      const res = await session.run({ [ONNX_INPUT_NAME]: input });
      const got = res[ONNX_OUTPUT_NAME].data as Float32Array;
      expect(res[ONNX_OUTPUT_NAME].dims).toEqual([n, dim]);
      let scale = 0;
      let maxDiff = 0;
      for (let i = 0; i < want.length; i++) {
        scale = Math.max(scale, Math.abs(want[i]));
        maxDiff = Math.max(maxDiff, Math.abs(want[i] - got[i]));
      }
      // Features are not degenerate (random nets can die through ReLUs).
      expect(scale).toBeGreaterThan(0.05);
      console.log(
        `${label}: max |ORT − TF.js| = ${maxDiff.toExponential(2)}, feature scale ${scale.toFixed(3)}`,
      );
      expect(maxDiff).toBeLessThanOrEqual(1e-4 * scale);
      await session.release();
      x.dispose();
      model.dispose();
      p.dispose();
    });
  }

  it('refuses a layer it cannot translate, naming it', () => {
    const input = tf.input({ shape: [4, 4, 1] });
    const out = tf.layers.dense({ units: 2, name: 'head' }).apply(tf.layers.flatten().apply(input));
    const m = tf.model({ inputs: input, outputs: out as tf.SymbolicTensor });
    expect(() =>
      layersModelToOnnx(m, { arch: 'x', inputShape: [4, 4, 1], mean: [0], std: [1] }),
    ).toThrow(/Layer flatten\w* \(Flatten\) has no ONNX translation/);
  });

  it('refuses bytes that are not ONNX with a sentence', () => {
    const dir = mkdtempSync(join(tmpdir(), 'maskcon-onnx-bad-'));
    const file = join(dir, 'model.onnx');
    writeFileSync(file, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]));
    expect(() => readOnnxMetadata(file)).toThrow(/not a valid ONNX protobuf/);
  });
});

describe('the TF.js export in plain Node', () => {
  it("loads with tf.loadLayersModel('file://…') after registerFileUrlLoader()", async () => {
    const p = createNetwork(
      { arch: 'resnet-mini', width: 4, inChannels: 1, projHidden: 8, projDim: 4 },
      2,
    );
    const dir = join(mkdtempSync(join(tmpdir(), 'maskcon-file-url-')), 'model');
    await exportBackbone(p, dir, {
      arch: 'resnet-mini',
      inputShape: [8, 8, 1],
      mean: [0],
      std: [1],
    });
    registerFileUrlLoader();
    const url = pathToFileURL(join(dir, 'model.json')).href;
    const a = await tf.loadLayersModel(url);
    const { model: b } = await loadBackbone(dir);
    const x = tf.randomNormal([2, 8, 8, 1], 0, 1, 'float32', 1);
    expect(Array.from((a.predict(x) as tf.Tensor).dataSync())).toEqual(
      Array.from((b.predict(x) as tf.Tensor).dataSync()),
    );
  });

  it('loads with the README snippet (tf.io.fromMemory) in a plain node process', async () => {
    const p = createNetwork(
      { arch: 'resnet-mini', width: 4, inChannels: 1, projHidden: 8, projDim: 4 },
      2,
    );
    const dir = join(mkdtempSync(join(tmpdir(), 'maskcon-plain-')), 'model');
    await exportBackbone(p, dir, {
      arch: 'resnet-mini',
      inputShape: [8, 8, 1],
      mean: [0],
      std: [1],
    });
    const { model } = await loadBackbone(dir);
    const want = Array.from((model.predict(tf.ones([1, 8, 8, 1])) as tf.Tensor).dataSync());
    // The snippet from packages/model/README.md, run by Node itself (no vitest, no TypeScript).
    const readme = readFileSync(join(here, '..', 'README.md'), 'utf8');
    const snippet = /```js plain-node\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(snippet).toBeDefined();
    // A folder of its own whose node_modules is this package's, as a user's project has its own.
    symlinkSync(join(here, '..', 'node_modules'), join(dirname(dir), 'node_modules'), 'dir');
    const script = join(dirname(dir), 'load.mjs');
    writeFileSync(
      script,
      `${snippet!.replace("'runs/1/model'", JSON.stringify(dir))}\nconst y = model.predict(tf.ones([1, 8, 8, 1]));\nconsole.log(JSON.stringify(Array.from(y.dataSync())));\n`,
    );
    const out = execFileSync(process.execPath, [script], {
      cwd: dirname(dir),
      encoding: 'utf8',
    });
    const got = JSON.parse(out.trim().split('\n').pop()!) as number[];
    expect(got.length).toBe(want.length);
    for (let i = 0; i < got.length; i++) expect(got[i]).toBeCloseTo(want[i], 5);
  });
});
