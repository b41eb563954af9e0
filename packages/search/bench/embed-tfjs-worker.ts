/**
 * One tfjs-wasm embedding worker of `pnpm bench embed` (a process of its own, as the trainer's
 * replicas each own a wasm backend): loads the exported model, then runs forward passes on a
 * fixed batch for SECONDS. Prints one JSON line.
 * usage: embed-tfjs-worker.ts MODEL_DIR BATCH SECONDS
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend, loadBackbone } from '@maskcon/model';

const [dir, batchRaw, secondsRaw] = process.argv.slice(2);
const batch = Number(batchRaw);
const seconds = Number(secondsRaw);
await initBackend('wasm', () => {});
const { model, meta } = await loadBackbone(dir);
const x = tf.randomNormal([batch, ...meta.inputShape], 0, 1, 'float32', 1);
const run = () => {
  const y = model.predict(x) as tf.Tensor;
  y.dataSync();
  y.dispose();
};
run(); // warm-up
let n = 0;
const t0 = performance.now();
let dt = 0;
do {
  run();
  n += batch;
  dt = (performance.now() - t0) / 1000;
} while (dt < seconds);
console.log(JSON.stringify({ images: n, seconds: dt }));
