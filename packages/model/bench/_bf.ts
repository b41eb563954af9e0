import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { conv2DBackpropFilterWasm as neu, setBackpropFilterChunk } from '../src/kernels/conv2d-backprop-filter.js';
setBackpropFilterChunk(Number(process.env.KT ?? 2048));
import { conv2DBackpropFilterWasm as old } from '../src/kernels/conv2d-backprop-filter-old.js';
import { registerWasmTrainingKernels } from '../src/kernels/index.js';
import { seededTensor } from '../src/kernels/tiny-net.js';
registerWasmTrainingKernels();
await tf.setBackend('wasm'); await tf.ready();
const backend = tf.backend();
function time(fn: () => tf.TensorInfo | tf.Tensor, reps = 3): number[] {
  const r = fn(); backend.disposeData(r.dataId);
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) { const t0 = performance.now(); const o = fn(); ts.push(performance.now() - t0); backend.disposeData(o.dataId); }
  return ts.sort((a, b) => a - b);
}
const cases = process.argv.slice(2).length ? [process.argv.slice(2).map(Number)] : [[32, 32, 64, 64, 1], [32, 32, 64, 128, 2], [32, 16, 128, 128, 1], [32, 8, 256, 256, 1], [128, 32, 64, 64, 1], [128, 16, 128, 128, 1]];
for (const [B, S, CI, CO, st] of cases) {
  const x = seededTensor([B, S, S, CI], 1) as tf.Tensor4D;
  const w = seededTensor([3, 3, CI, CO], 2, 0.1) as tf.Tensor4D;
  const y = tf.conv2d(x, w, st, 'same');
  const dy = seededTensor(y.shape, 3) as tf.Tensor4D;
  const flops = 2 * B * y.shape[1] * y.shape[2] * CI * CO * 9;
  const attrs = { strides: st, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, CI, CO] } as never;
  const fwd: number[] = [], a: number[] = [], b: number[] = [];
  for (let r = 0; r < 4; r++) {
    fwd.push(...time(() => tf.conv2d(x, w, st, 'same'), 1));
    a.push(...time(() => old({ inputs: { x, dy }, backend, attrs }), 1));
    b.push(...time(() => neu({ inputs: { x, dy }, backend, attrs }), 1));
  }
  for (const t of [fwd, a, b]) t.sort((p, q) => p - q);
  const g = (t: number[]) => `${t[0].toFixed(0)}-${t[t.length - 1].toFixed(0)}ms ${(flops / t[0] / 1e6).toFixed(1)}GF/s`;
  console.log(`B${B} ${S}x${S} ${CI}->${CO} s${st}: fwd ${g(fwd)} | old dW ${g(a)} | new dW ${g(b)}`);
  tf.dispose([x, w, y, dy]);
}
