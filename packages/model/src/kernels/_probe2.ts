import * as tf from '@tensorflow/tfjs';
import { registerWasmTrainingKernels } from './index.js';
import { seededTensor, createTinyNetVars, tinyNetLoss } from './tiny-net.js';
registerWasmTrainingKernels();
await tf.setBackend('wasm'); await tf.ready();
const cfg = { inChannels: 3, width: 4, hidden: 8, dim: 6, queue: 10 };
async function run(backend: string) {
  await tf.setBackend(backend);
  const vars = createTinyNetVars(cfg, 1);
  const x = seededTensor([3, 9, 9, 3], 5) as tf.Tensor4D;
  const q = seededTensor([cfg.queue, cfg.dim], 6) as tf.Tensor2D;
  const t = tf.softmax(seededTensor([3, cfg.queue], 7, 3)) as tf.Tensor2D;
  const { value, grads } = tf.variableGrads(() => tinyNetLoss(vars, x, q, t));
  const out: Record<string, Float32Array> = {};
  for (const [k, v] of Object.entries(grads)) out[k.split('_')[1]] = v.dataSync() as Float32Array;
  return { loss: value.dataSync()[0], out };
}
const a = await run('cpu');
let b;
try { b = await run('wasm'); } catch (e) { console.log('WASM FAIL', (e as Error).message); process.exit(1); }
console.log('loss', a.loss, b.loss);
for (const k of Object.keys(a.out)) { let m = 0; for (let i = 0; i < a.out[k].length; i++) m = Math.max(m, Math.abs(a.out[k][i] - b.out[k][i])); console.log(k, m.toExponential(2)); }
