import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { installLeanGradients, registerWasmTrainingKernels } from '../src/index.js';
import { uninstallLeanGradients } from '../src/lean-gradients.js';
import { backbone, createNetwork, l2Normalize, projector } from '../src/resnet.js';

/** Loss and gradients of a small ResNet (training-mode BN) on fixed inputs. */
function lossAndGrads(): { loss: number; grads: Map<string, Float32Array> } {
  const p = createNetwork(
    { arch: 'resnet-mini', width: 4, inChannels: 3, projHidden: 16, projDim: 8 },
    5,
  );
  const x = tf.randomUniform([4, 12, 12, 3], -1, 1, 'float32', 9) as tf.Tensor4D;
  const vars = [...p.trainable.values()];
  const { value, grads } = tf.variableGrads(() => {
    const q = l2Normalize(projector(p, backbone(p, x, { training: true, bnSplits: 2 })));
    return tf.sum(tf.mul(q, tf.linspace(-1, 1, 32).reshape([4, 8]))) as tf.Scalar;
  }, vars);
  const out = new Map<string, Float32Array>();
  for (const [name, v] of p.trainable) out.set(name, grads[v.name].dataSync() as Float32Array);
  const loss = value.dataSync()[0];
  tf.dispose([value, x, ...Object.values(grads)]);
  p.dispose();
  return { loss, grads: out };
}

describe('lean gradients (backward pass that frees as it goes)', () => {
  it.each([
    'cpu',
    'wasm',
  ])('gives bit-identical loss and gradients to tfjs-core’s own backward pass, without leaks (%s)', async (backend) => {
    registerWasmTrainingKernels();
    await tf.setBackend(backend);
    uninstallLeanGradients();
    const stock = lossAndGrads(); // tfjs-core's engine.gradients
    const before = tf.memory().numTensors;
    installLeanGradients();
    const lean = lossAndGrads();
    expect(tf.memory().numTensors).toBe(before);
    uninstallLeanGradients();
    expect(lean.loss).toBe(stock.loss);
    expect(lean.grads.size).toBe(stock.grads.size);
    for (const [name, g] of stock.grads)
      expect(Array.from(lean.grads.get(name)!), name).toEqual(Array.from(g));
  });
});
