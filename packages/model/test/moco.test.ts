import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '@maskcon/random';
import {
  MaskConModel,
  inversePermutation,
  MemoryQueue,
  SgdMomentum,
  learningRateAt,
  type MocoConfig,
  type StepBatch,
} from '../src/index.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const cfg = (method: MocoConfig['method']): MocoConfig => ({
  method,
  w: 1,
  t: 0.1,
  t0: 0.1,
  queueSize: 16,
  keyMomentum: 0.9,
  sgdMomentum: 0.9,
  weightDecay: 5e-4,
  bnSplits: 2,
  seed: 3,
  network: { arch: 'resnet-mini', width: 2, inChannels: 1, projHidden: 8, projDim: 4 },
});

function images(n: number, seed: number): tf.Tensor4D {
  return tf.randomUniform([n, 8, 8, 1], -1, 1, 'float32', seed) as tf.Tensor4D;
}

/**
 * A batch for the model's step from whole query/key tensors (B×H×W×C): the views at the given
 * positions are gathered rows, and the shuffle permutation is drawn from `seed`.
 */
function batchOf(xq: tf.Tensor4D, xk: tf.Tensor4D, labels: Int32Array, seed: number): StepBatch {
  return {
    labels,
    shuffle: new Rng(seed).permutation(labels.length),
    views: (positions, view) =>
      tf.tidy(() =>
        tf.gather(view === 'query' ? xq : xk, tf.tensor1d(Int32Array.from(positions), 'int32')),
      ),
  };
}

describe('MemoryQueue', () => {
  it('enqueues FIFO and wraps around', () => {
    const q = new MemoryQueue(4, 2);
    q.enqueue(
      tf.tensor2d([
        [1, 0],
        [0, 1],
      ]),
      [5, 6],
    );
    expect(q.pointer).toBe(2);
    expect(q.isFull).toBe(false);
    q.enqueue(
      tf.tensor2d([
        [2, 0],
        [0, 2],
      ]),
      [7, 8],
    );
    expect(q.pointer).toBe(0);
    expect(q.isFull).toBe(true);
    q.enqueue(
      tf.tensor2d([
        [3, 3],
        [4, 4],
      ]),
      [9, 10],
    );
    expect(Array.from(q.keys.dataSync())).toEqual([3, 3, 4, 4, 2, 0, 0, 2]);
    expect(Array.from(q.labels)).toEqual([9, 10, 7, 8]);
    expect(() => q.enqueue(tf.zeros([3, 2]) as tf.Tensor2D, [1, 2, 3])).toThrow(/not a multiple/);
    expect(() => new MemoryQueue(-1, 2)).toThrow(/Illegal queue size -1/);
    q.dispose();
  });
});

describe('SGD and schedule', () => {
  it('matches torch.optim.SGD semantics element by element', () => {
    const p = tf.variable(tf.tensor1d([1, -2, 3]));
    const sgd = new SgdMomentum(0.9, 0.1);
    const g1 = tf.tensor1d([0.5, 0.5, -1]);
    const g2 = tf.tensor1d([1, 0, 2]);
    sgd.step(new Map([['p', p]]), { p: g1 }, 0.1);
    // b = g + wd·θ; θ = θ − lr·b
    let theta = [1, -2, 3];
    let b = theta.map((t, i) => [0.5, 0.5, -1][i] + 0.1 * t);
    theta = theta.map((t, i) => t - 0.1 * b[i]);
    expect(Array.from(p.dataSync()).map((v) => +v.toFixed(6))).toEqual(
      theta.map((v) => +v.toFixed(6)),
    );
    sgd.step(new Map([['p', p]]), { p: g2 }, 0.05);
    b = b.map((bb, i) => 0.9 * bb + [1, 0, 2][i] + 0.1 * theta[i]);
    theta = theta.map((t, i) => t - 0.05 * b[i]);
    const got = Array.from(p.dataSync());
    got.forEach((v, i) => expect(v).toBeCloseTo(theta[i], 5));
    sgd.dispose();
    p.dispose();
  });

  it('warms up linearly then decays with a cosine to zero', () => {
    expect(learningRateAt(0, 0.02, 10, 110)).toBe(0);
    expect(learningRateAt(5, 0.02, 10, 110)).toBeCloseTo(0.01, 12);
    expect(learningRateAt(10, 0.02, 10, 110)).toBeCloseTo(0.02, 12);
    expect(learningRateAt(60, 0.02, 10, 110)).toBeCloseTo(0.01, 12);
    expect(learningRateAt(110, 0.02, 10, 110)).toBeCloseTo(0, 12);
  });
});

describe('MaskConModel', () => {
  it('trains: momentum update, queue enqueue, finite decreasing loss, no tensor leaks', () => {
    const model = new MaskConModel(cfg('maskcon'));
    const x = images(8, 1);
    const labels = Int32Array.from([0, 1, 0, 1, 0, 1, 0, 1]);
    const [f1, f2] = [images(8, 2), images(8, 3)];
    model.fillQueue(batchOf(f1, f1, labels, 1));
    model.fillQueue(batchOf(f2, f2, labels, 2));
    tf.dispose([f1, f2]);
    expect(model.queue.isFull).toBe(true);

    // θ_k ← m·θ_k + (1−m)·θ_q, checked on one parameter after perturbing θ_q.
    const name = 'layer2.0.conv1.weight';
    const pq = model.encoderQ.trainable.get(name)!;
    pq.assign(tf.add(pq, 1));
    const before = model.encoderK.trainable.get(name)!.dataSync().slice();
    const q = pq.dataSync();
    model.momentumUpdateKeyEncoder();
    const after = model.encoderK.trainable.get(name)!.dataSync();
    for (let i = 0; i < after.length; i++)
      expect(after[i]).toBeCloseTo(0.9 * before[i] + 0.1 * q[i], 5);

    const losses: number[] = [];
    let tensors = -1;
    for (let step = 0; step < 6; step++) {
      const loss = model.step(batchOf(x, x, labels, 10 + step), 0.05);
      losses.push(loss.dataSync()[0]);
      loss.dispose();
      if (step === 1) tensors = tf.memory().numTensors;
      if (step > 1) expect(tf.memory().numTensors).toBe(tensors);
      expect(model.queue.pointer).toBe(((step + 1) * 8) % 16);
    }
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[5]).toBeLessThan(losses[0]);
    const feats = model.features(x);
    expect(feats.shape).toEqual([8, 8]);
    feats.dispose();
    model.dispose();
    x.dispose();
  });

  it('micro-batches over whole BN groups give the one-pass loss, gradients, BN statistics and keys', () => {
    for (const method of ['maskcon', 'coins'] as const) {
      const c = {
        ...cfg(method),
        bnSplits: 4,
        network: { ...cfg(method).network, classifierClasses: method === 'coins' ? 3 : undefined },
      };
      const model = new MaskConModel(c);
      const labels = Int32Array.from([0, 1, 2, 0, 1, 2, 0, 1]);
      const [f1, f2] = [images(8, 2), images(8, 3)];
      model.fillQueue(batchOf(f1, f1, labels, 1));
      model.fillQueue(batchOf(f2, f2, labels, 2));
      tf.dispose([f1, f2]);
      const xq = images(8, 4);
      const k = model.encodeKeys(images(8, 5), 4);
      const tensors = tf.memory().numTensors;
      const read = (passes: number) => {
        const g = model.gradients(xq, k, labels, 4, passes);
        const out = {
          loss: g.loss.dataSync()[0],
          grads: new Map([...g.grads].map(([n, t]) => [n, t.dataSync().slice()])),
          stats: g.bnStats.map((s) => [...s.mean.dataSync(), ...s.variance.dataSync()]),
        };
        tf.dispose([
          g.loss,
          ...g.grads.values(),
          ...g.bnStats.flatMap((st) => [st.mean, st.variance]),
        ]);
        return out;
      };
      const one = read(1);
      for (const passes of [2, 4]) {
        const many = read(passes);
        expect(many.loss).toBeCloseTo(one.loss, 5);
        let maxRel = 0;
        for (const [n, a] of one.grads) {
          const b = many.grads.get(n)!;
          const scale = Math.max(1e-3, ...Array.from(a, Math.abs));
          for (let i = 0; i < a.length; i++)
            maxRel = Math.max(maxRel, Math.abs(a[i] - b[i]) / scale);
        }
        expect(maxRel).toBeLessThan(1e-4);
        one.stats.forEach((s, i) =>
          s.forEach((v, j) => expect(many.stats[i][j]).toBeCloseTo(v, 5)),
        );
        const kOne = model.encodeKeys(xq, 4);
        const kMany = model.encodeKeys(xq, 4, passes);
        const kManyV = kMany.dataSync();
        kOne.dataSync().forEach((v, i) => expect(kManyV[i]).toBeCloseTo(v, 5));
        tf.dispose([kOne, kMany]);
      }
      expect(tf.memory().numTensors).toBe(tensors); // nothing left behind by the passes
      expect(() => model.gradients(xq, k, labels, 4, 3)).toThrow(/whole groups/);
      tf.dispose([xq, k]);
      model.dispose();
    }
  });

  it('is reproducible from its seed', () => {
    const run = () => {
      const model = new MaskConModel(cfg('selfcon'));
      const x = images(8, 7);
      const labels = Int32Array.from([0, 1, 2, 0, 1, 2, 0, 1]);
      model.fillQueue(batchOf(x, x, labels, 1));
      model.fillQueue(batchOf(x, x, labels, 2));
      const l = model.step(batchOf(x, x, labels, 3), 0.05);
      const out = [l.dataSync()[0], ...model.encoderQ.get('conv1.weight').dataSync()];
      l.dispose();
      model.dispose();
      x.dispose();
      return out;
    };
    expect(run()).toEqual(run());
  });
});

describe('MaskConModel.step (the training step every run takes)', () => {
  it('un-shuffles the keys: in one BN group, shuffle BN gives the keys of the unshuffled batch', () => {
    const model = new MaskConModel({ ...cfg('maskcon'), bnSplits: 1 });
    const x = images(8, 21);
    const labels = Int32Array.from([0, 1, 2, 0, 1, 2, 0, 1]);
    const plain = model.encodeKeys(x, 1);
    const batch = batchOf(x, x, labels, 5);
    expect(Array.from(batch.shuffle)).not.toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    const shuffled = model.batchKeys(batch);
    const a = plain.dataSync();
    shuffled.dataSync().forEach((v, i) => expect(v).toBeCloseTo(a[i], 5));
    // With two BN groups the groups hold other samples, so the keys differ.
    const two = new MaskConModel({ ...cfg('maskcon'), bnSplits: 2 });
    const kTwo = two.batchKeys(batch);
    const kTwoPlain = two.encodeKeys(x, 2);
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(kTwo, kTwoPlain))).dataSync()[0]);
    expect(diff).toBeGreaterThan(1e-3);
    tf.dispose([plain, shuffled, kTwo, kTwoPlain, x]);
    model.dispose();
    two.dispose();
  });

  it('computes the loss of the batch against the queue before enqueueing its keys, then updates', () => {
    // The step's loss equals the method's loss recomputed from the pre-step state: same keys
    // (momentum-updated key encoder, shuffle BN), same queue, query encoder before SGD.
    for (const method of ['maskcon', 'coins'] as const) {
      const c = {
        ...cfg(method),
        network: { ...cfg(method).network, classifierClasses: method === 'coins' ? 3 : undefined },
      };
      const model = new MaskConModel(c);
      const labels = Int32Array.from([0, 1, 2, 0, 1, 2, 0, 1]);
      const [f1, f2, xq, xk] = [images(8, 2), images(8, 3), images(8, 4), images(8, 5)];
      model.fillQueue(batchOf(f1, f1, labels, 1));
      model.fillQueue(batchOf(f2, f2, labels, 2));
      const batch = batchOf(xq, xk, labels, 7);
      // The expected loss, from the same pieces in the algorithm's order on a twin model.
      const twin = new MaskConModel(c);
      twin.fillQueue(batchOf(f1, f1, labels, 1));
      twin.fillQueue(batchOf(f2, f2, labels, 2));
      twin.momentumUpdateKeyEncoder();
      const perm = batch.shuffle;
      const kShuffled = twin.encodeKeys(
        tf.gather(xk, tf.tensor1d(perm, 'int32')) as tf.Tensor4D,
        c.bnSplits,
      );
      const k = tf.gather(kShuffled, tf.tensor1d(inversePermutation(perm), 'int32')) as tf.Tensor2D;
      const g = twin.gradients(xq, k, labels);
      const expected = g.loss.dataSync()[0];
      const queueBefore = model.queue.keys.dataSync().slice();
      const loss = model.step(batch, 0.05);
      expect(loss.dataSync()[0]).toBeCloseTo(expected, 5);
      // The batch's keys replaced the oldest 8 queue entries (pointer was at 0).
      const kv = k.dataSync();
      const after = model.queue.keys.dataSync();
      for (let i = 0; i < kv.length; i++) expect(after[i]).toBeCloseTo(kv[i], 5);
      expect(Array.from(after.slice(kv.length))).toEqual(Array.from(queueBefore.slice(kv.length)));
      expect(model.queue.pointer).toBe(8);
      // SGD moved the query encoder.
      const w0 = twin.encoderQ.get('conv1.weight').dataSync();
      const w1 = model.encoderQ.get('conv1.weight').dataSync();
      expect(w1.some((v, i) => Math.abs(v - w0[i]) > 1e-7)).toBe(true);
      tf.dispose([loss, g.loss, ...g.grads.values(), kShuffled, k, f1, f2, xq, xk]);
      for (const st of g.bnStats) tf.dispose([st.mean, st.variance]);
      model.dispose();
      twin.dispose();
    }
  });
});
