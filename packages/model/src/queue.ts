import * as tf from '@tensorflow/tfjs';

/**
 * The MoCo memory bank: K unit-norm key projections (K×d, on the device), their labels (on the
 * host: they come from the data loader and build the target mask), and a FIFO pointer.
 */
export class MemoryQueue {
  readonly size: number;
  readonly dim: number;
  readonly keys: tf.Variable<tf.Rank.R2>; // K×d
  readonly labels: Int32Array; // K
  private ptr = 0;
  private filled = 0;

  constructor(size: number, dim: number) {
    if (!(Number.isInteger(size) && size > 0))
      throw new Error(`Illegal queue size ${size}: it must be a positive integer (--K).`);
    if (!(Number.isInteger(dim) && dim > 0))
      throw new Error(`Illegal queue dimension ${dim}: it must be a positive integer.`);
    this.size = size;
    this.dim = dim;
    this.keys = tf.variable(tf.zeros([size, dim]), false) as tf.Variable<tf.Rank.R2>;
    this.labels = new Int32Array(size).fill(-1);
  }

  get pointer(): number {
    return this.ptr;
  }

  /** True once every slot holds a real key. */
  get isFull(): boolean {
    return this.filled >= this.size;
  }

  /** Replaces the oldest N entries by `keys` (N×d) and `labels` (N). K must be a multiple of N. */
  enqueue(keys: tf.Tensor2D, labels: ArrayLike<number>): void {
    const n = keys.shape[0];
    if (keys.shape[1] !== this.dim)
      throw new Error(`Queue holds ${this.dim}-d keys, got ${keys.shape[1]}-d.`);
    if (labels.length !== n) throw new Error(`Enqueue got ${n} keys but ${labels.length} labels.`);
    if (this.size % n !== 0)
      throw new Error(`Queue size ${this.size} is not a multiple of the batch size ${n}.`);
    const p = this.ptr;
    const next = tf.tidy(() => {
      const parts: tf.Tensor2D[] = [];
      if (p > 0) parts.push(tf.slice(this.keys, [0, 0], [p, this.dim]));
      parts.push(keys);
      if (p + n < this.size)
        parts.push(tf.slice(this.keys, [p + n, 0], [this.size - p - n, this.dim]));
      return parts.length === 1 ? parts[0].clone() : tf.concat(parts, 0);
    });
    this.keys.assign(next);
    next.dispose();
    for (let i = 0; i < n; i++) this.labels[p + i] = labels[i];
    this.ptr = (p + n) % this.size;
    this.filled = Math.min(this.size, this.filled + n);
  }

  /** State for checkpoints. */
  state(): { keys: Float32Array; labels: Int32Array; ptr: number; filled: number } {
    return {
      keys: this.keys.dataSync() as Float32Array,
      labels: this.labels.slice(),
      ptr: this.ptr,
      filled: this.filled,
    };
  }

  /** Restores a state saved by `state()`. */
  loadState(st: { keys: Float32Array; labels: Int32Array; ptr: number; filled: number }): void {
    if (st.keys.length !== this.size * this.dim || st.labels.length !== this.size) {
      throw new Error(
        `Saved queue holds ${st.labels.length} entries of ${st.keys.length / Math.max(1, st.labels.length)} dims; this run's queue is ${this.size}×${this.dim}.`,
      );
    }
    this.keys.assign(tf.tensor2d(st.keys, [this.size, this.dim]));
    this.labels.set(st.labels);
    this.ptr = st.ptr;
    this.filled = st.filled;
  }

  dispose(): void {
    this.keys.dispose();
  }
}
