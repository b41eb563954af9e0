import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
await tf.setBackend('wasm'); await tf.ready();
function t(name: string, xs: number[], fs: number[], dil: [number, number], macs: number) {
  const x = tf.randomNormal(xs) as tf.Tensor4D; const f = tf.randomNormal(fs) as tf.Tensor4D;
  const run = () => { const y = tf.conv2d(x, f, 1, 'valid', 'NHWC', dil); y.dataSync(); y.dispose(); };
  run();
  const ts: number[] = [];
  for (let i = 0; i < 7; i++) { const t0 = performance.now(); run(); ts.push(performance.now() - t0); }
  ts.sort((a, b) => a - b);
  // also: new filter each time (packing cost)
  const ts2: number[] = [];
  for (let i = 0; i < 5; i++) { const f2 = f.clone(); const t0 = performance.now(); const y = tf.conv2d(x, f2 as tf.Tensor4D, 1, 'valid', 'NHWC', dil); y.dataSync(); ts2.push(performance.now() - t0); y.dispose(); f2.dispose(); }
  ts2.sort((a, b) => a - b);
  console.log(name.padEnd(40), `cached ${ts[0].toFixed(2)}ms ${(2 * macs / ts[0] / 1e6).toFixed(1)} GF/s | fresh filter ${ts2[0].toFixed(2)}ms ${(2 * macs / ts2[0] / 1e6).toFixed(1)} GF/s`);
  tf.dispose([x, f]);
}
const M = 192, N = 64;
for (const K of [512, 1024, 2048, 4096, 8192]) {
  t(`igemm window 2x1 kc=${K / 2}`, [64, 4, 1, K / 2], [2, 1, K / 2, N], [1, 1], M * N * K);
  t(`gemm 1x1 K=${K}`, [1, M, 1, K], [1, 1, K, N], [1, 1], M * N * K);
}
t('igemm window 32x1 kc=1024 (old-new)', [64, 34, 1, 1024], [32, 1, 1024, N], [1, 1], M * N * 32768);
t('igemm 32x32 kc=32 (old)', [64, 34, 34, 32], [32, 32, 32, N], [1, 1], 64 * 9 * N * 32768);
t('fwd 3x3 64->64 32x32 b32', [32, 34, 34, 64], [3, 3, 64, 64], [1, 1], 32 * 1024 * 64 * 64 * 9);
