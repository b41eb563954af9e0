import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  backbone,
  createNetwork,
  exportBackbone,
  loadBackbone,
  type NetworkSpec,
} from '../src/index.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function maxAbsDiff(
  a: Float32Array | Int32Array | Uint8Array,
  b: Float32Array | Int32Array | Uint8Array,
): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('TensorFlow.js export of the backbone', () => {
  const cases: [string, NetworkSpec, [number, number, number]][] = [
    [
      'resnet-mini, small stem',
      { arch: 'resnet-mini', width: 4, inChannels: 1, projHidden: 8, projDim: 4 },
      [12, 12, 1],
    ],
    [
      'resnet18, standard stem',
      {
        arch: 'resnet18',
        width: 0,
        baseWidth: 4,
        stem: 'standard',
        inChannels: 3,
        projHidden: 8,
        projDim: 4,
      },
      [34, 34, 3],
    ],
    [
      'resnet50, small stem',
      { arch: 'resnet50', width: 0, baseWidth: 2, inChannels: 3, projHidden: 8, projDim: 4 },
      [16, 16, 3],
    ],
  ];
  for (const [label, spec, shape] of cases) {
    it(`reproduces backbone() in eval mode: ${label}`, async () => {
      const p = createNetwork(spec, 5);
      // Non-trivial running statistics, so eval-mode BN is really exercised.
      for (const [n, v] of p.buffers)
        v.assign(
          tf.add(
            n.endsWith('running_var') ? 0.5 : 0.1,
            tf.randomUniform(v.shape, 0, 1, 'float32', 3),
          ),
        );
      // Positive BN shifts keep activations alive through the ReLUs of a random network.
      for (const [n, v] of p.trainable)
        if (n.endsWith('.bias') && v.shape.length === 1 && !n.startsWith('projector'))
          v.assign(tf.randomUniform(v.shape, 0.2, 1, 'float32', 4));
      const dir = join(mkdtempSync(join(tmpdir(), 'maskcon-export-')), 'model');
      await exportBackbone(p, dir, {
        arch: spec.arch,
        inputShape: shape,
        mean: [0.5],
        std: [0.25],
      });
      expect(readdirSync(dir).sort()).toEqual(['model.json', 'weights.bin']);
      const { model, meta } = await loadBackbone(dir);
      expect(meta.inputShape).toEqual(shape);
      const x = tf.randomNormal([2, ...shape], 0, 1, 'float32', 9) as tf.Tensor4D;
      const want = backbone(p, x, { training: false, bnSplits: 1 });
      const got = model.predict(x) as tf.Tensor;
      expect(got.shape).toEqual(want.shape);
      const err = maxAbsDiff(got.dataSync() as Float32Array, want.dataSync() as Float32Array);
      expect(err).toBeLessThan(1e-4);
      // The export did not just copy zeros: features vary across the batch.
      expect(
        maxAbsDiff(
          want.dataSync().slice(0, want.shape[1]) as Float32Array,
          want.dataSync().slice(want.shape[1]!) as Float32Array,
        ),
      ).toBeGreaterThan(1e-3);
      model.dispose();
      p.dispose();
    });
  }

  it('explains a missing export', async () => {
    await expect(loadBackbone(join(tmpdir(), 'no-such-model'))).rejects.toThrow(
      /No exported model at .*model\.json missing/,
    );
    expect(existsSync(join(tmpdir(), 'no-such-model'))).toBe(false);
  });
});
