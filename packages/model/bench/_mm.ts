import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
await tf.setBackend('wasm'); await tf.ready();
for (const [M, K, N] of [[576, 1024, 64], [576, 2048, 64], [576, 4096, 64], [1152, 2048, 128], [128, 128, 8192], [128, 8192, 128]]) {
  const a = tf.randomNormal([M, K]); const b = tf.randomNormal([K, N]);
  const ts: number[] = [], ts2: number[] = [];
  for (let i = 0; i < 6; i++) {
    let t0 = performance.now(); let y = tf.matMul(a, b); y.dataSync(); ts.push(performance.now() - t0); y.dispose();
    const b2 = b.clone(); t0 = performance.now(); y = tf.matMul(a, b2); y.dataSync(); ts2.push(performance.now() - t0); y.dispose(); b2.dispose();
  }
  ts.sort((p, q) => p - q); ts2.sort((p, q) => p - q);
  const f = 2 * M * K * N / 1e6;
  console.log(`${M}x${K}x${N}: cached-b ${ts[0].toFixed(2)}ms ${(f / ts[0]).toFixed(1)}GF/s  fresh-b ${ts2[0].toFixed(2)}ms ${(f / ts2[0]).toFixed(1)}GF/s`);
  tf.dispose([a, b]);
}
