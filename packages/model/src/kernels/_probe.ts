import * as tf from '@tensorflow/tfjs';
import { registerWasmTrainingKernels } from './index.js';
import { seededTensor } from './tiny-net.js';
registerWasmTrainingKernels();
await tf.setBackend('wasm'); await tf.ready();
async function onBoth(f: () => tf.Tensor): Promise<number> {
  await tf.setBackend('cpu'); const a = f().dataSync().slice();
  await tf.setBackend('wasm'); const b = f().dataSync().slice();
  let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]-b[i])); return m;
}
for (const [B,H,W,ci,co,k,s,pad] of [[2,7,7,3,4,3,1,'same'],[2,8,8,3,4,3,2,'same'],[3,9,6,5,2,3,2,'valid'],[1,5,5,1,1,1,2,'valid'],[2,10,10,4,6,1,2,'same'],[2,11,11,3,5,7,2,'same'],[2,12,9,3,5,3,2,1],[2,12,9,3,5,3,1,2],[2,6,6,3,5,1,1,'valid']] as const) {
  const x = seededTensor([B,H,W,ci], 1) as tf.Tensor4D;
  const w = seededTensor([k,k,ci,co], 2) as tf.Tensor4D;
  const y = tf.conv2d(x, w, s, pad as any);
  const dy = seededTensor(y.shape, 3) as tf.Tensor4D;
  const ef = await onBoth(() => tf.grad((ww: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(x, ww as tf.Tensor4D, s, pad as any), dy)))(w));
  const ei = await onBoth(() => tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(xx as tf.Tensor4D, w, s, pad as any), dy)))(x));
  console.log(B,H,W,ci,co,k,s,pad,'filterErr',ef.toExponential(2),'inputErr',ei.toExponential(2));
}
