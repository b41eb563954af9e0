import * as tf from '@tensorflow/tfjs';
import { registerWasmTrainingKernels } from '/work/main/packages/model/src/kernels/index.js';
import { forceBatchMatMulOrientation } from '/work/main/packages/model/src/kernels/batch-mat-mul.js';
registerWasmTrainingKernels();
await tf.setBackend('wasm'); await tf.ready();
const cases: [string, number[], number[], boolean, boolean][] = [
  ['q·Qᵀ 32', [32, 128], [8192, 128], false, true],
  ['q·Qᵀ 128', [128, 128], [8192, 128], false, true],
  ['dl·Q 128', [128, 8192], [8192, 128], false, false],
  ['dl·Q 32', [32, 8192], [8192, 128], false, false],
  ['fᵀ·dh 128', [128, 256], [128, 512], true, false],
  ['dh·W2ᵀ 128', [128, 128], [512, 128], false, true],
];
for (const [name, as, bs, tA, tB] of cases) {
  const a = tf.randomNormal(as), b = tf.randomNormal(bs);
  const res: Record<string, number[]> = { direct: [], swapped: [], model: [] };
  for (let r = 0; r < 5; r++) for (const o of ['direct', 'swapped', 'model'] as const) {
    forceBatchMatMulOrientation(o === 'model' ? null : o);
    const b2 = b.clone(); const a2 = a.clone();
    const t0 = performance.now(); const y = tf.matMul(a2, b2, tA, tB); y.dataSync(); res[o].push(performance.now() - t0);
    tf.dispose([y, a2, b2]);
  }
  const m = tA ? as[1] : as[0], k = tA ? as[0] : as[1], n = tB ? bs[0] : bs[1];
  const g = (o: string) => { const t = res[o].sort((p, q) => p - q)[0]; return `${t.toFixed(2)}ms ${(2 * m * k * n / t / 1e6).toFixed(1)}GF/s`; };
  console.log(name.padEnd(14), 'direct', g('direct'), '| swapped', g('swapped'), '| model', g('model'));
  tf.dispose([a, b]);
}
