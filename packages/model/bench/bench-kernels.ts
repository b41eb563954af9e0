/**
 * Timing script (not a test): GFLOP/s of wasm forward Conv2D vs our
 * Conv2DBackpropFilter / Conv2DBackpropInput (forward-conv based) and tfjs's
 * own wasm Conv2DBackpropInput, for a 64→64 3×3 conv at 32×32, batch 32.
 *
 *   pnpm bench kernels [batch] [size] [channels]
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { conv2DBackpropInputConfig } from '../src/kernels/conv2d-backprop-input.js';
import {
  registerWasmTrainingKernels,
  unregisterWasmTrainingKernels,
} from '../src/kernels/index.js';
import { seededTensor } from '../test/tiny-net.js';

const argv = process.argv.slice(2).map(Number);
const B = argv[0] || 32;
const S = argv[1] || 32;
const C = argv[2] || 64;
const K = 3;

function timeIt(fn: () => tf.Tensor, minMs = 1500, minReps = 3): number {
  // warm-up (also creates XNNPACK operators)
  fn().dispose();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < minReps || performance.now() - start < minMs) {
    const t0 = performance.now();
    const out = fn();
    out.dataSync();
    times.push(performance.now() - t0);
    out.dispose();
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

async function main(): Promise<void> {
  registerWasmTrainingKernels();
  await tf.setBackend('wasm');
  await tf.ready();
  console.log(
    `backend=${tf.getBackend()}  conv ${C}→${C} ${K}×${K}, input ${B}×${S}×${S}×${C} (NHWC)`,
  );
  const rows: Array<[string, string, number, number]> = [];
  for (const stride of [1, 2] as const) {
    const x = seededTensor([B, S, S, C], 1) as tf.Tensor4D;
    const w = seededTensor([K, K, C, C], 2, 0.1) as tf.Tensor4D;
    const y = tf.conv2d(x, w, stride, 'same');
    const dy = seededTensor(y.shape, 3) as tf.Tensor4D;
    const [, oh, ow] = y.shape;
    const flops = 2 * B * oh * ow * C * C * K * K;
    const attrsF = { strides: stride, pad: 'same', dataFormat: 'NHWC', filterShape: [K, K, C, C] };
    const attrsI = { strides: stride, pad: 'same', dataFormat: 'NHWC', inputShape: [B, S, S, C] };

    const fwd = timeIt(() => tf.conv2d(x, w, stride, 'same'));
    rows.push([`s${stride}`, 'forward Conv2D (XNNPACK)', fwd, flops]);
    const bf = timeIt(
      () => tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, attrsF as never) as tf.Tensor,
    );
    rows.push([`s${stride}`, 'Conv2DBackpropFilter (ours)', bf, flops]);
    const bi = timeIt(
      () =>
        tf
          .engine()
          .runKernel(tf.Conv2DBackpropInput, { dy, filter: w }, attrsI as never) as tf.Tensor,
    );
    rows.push([`s${stride}`, 'Conv2DBackpropInput (ours)', bi, flops]);
    unregisterWasmTrainingKernels();
    const orig = tf.getKernel(tf.Conv2DBackpropInput, 'wasm');
    if (orig != null && orig !== conv2DBackpropInputConfig) {
      const bo = timeIt(
        () =>
          tf
            .engine()
            .runKernel(tf.Conv2DBackpropInput, { dy, filter: w }, attrsI as never) as tf.Tensor,
        500,
        2,
      );
      rows.push([`s${stride}`, 'Conv2DBackpropInput (tfjs wasm)', bo, flops]);
    }
    registerWasmTrainingKernels();
    tf.dispose([x, w, y, dy]);
  }
  console.log('stride  kernel                              ms      GFLOP/s');
  for (const [s, name, ms, flops] of rows) {
    console.log(
      `${s.padEnd(7)} ${name.padEnd(34)} ${ms.toFixed(1).padStart(7)} ${(flops / ms / 1e6).toFixed(2).padStart(9)}`,
    );
  }
  console.log(
    '(GFLOP/s counts the useful FLOPs of the conv, 2·B·OH·OW·Cin·Cout·K², for every kernel.)',
  );
}

await main();
