import * as tf from '@tensorflow/tfjs';

/**
 * Named parameters of a network. Trainable ones get gradients; buffers (BatchNorm running
 * statistics) are updated by the forward pass in training mode.
 * Names follow torchvision's state-dict style (`layer1.0.conv1.weight`) so that weights can
 * later be matched by name.
 */
export class ParamStore {
  readonly trainable = new Map<string, tf.Variable>();
  readonly buffers = new Map<string, tf.Variable>();

  addTrainable(name: string, value: tf.Tensor): tf.Variable {
    if (this.trainable.has(name) || this.buffers.has(name))
      throw new Error(`Duplicate parameter name ${name}.`);
    const v = tf.variable(value, true);
    value.dispose();
    this.trainable.set(name, v);
    return v;
  }

  addBuffer(name: string, value: tf.Tensor): tf.Variable {
    if (this.trainable.has(name) || this.buffers.has(name))
      throw new Error(`Duplicate parameter name ${name}.`);
    const v = tf.variable(value, false);
    value.dispose();
    this.buffers.set(name, v);
    return v;
  }

  get(name: string): tf.Variable {
    const v = this.trainable.get(name) ?? this.buffers.get(name);
    if (!v) throw new Error(`Unknown parameter ${name}.`);
    return v;
  }

  /** A deep copy whose variables are all non-trainable (the key encoder). */
  cloneFrozen(): ParamStore {
    const out = new ParamStore();
    for (const [n, v] of this.trainable) {
      const c = tf.variable(v.clone(), false);
      out.trainable.set(n, c);
    }
    for (const [n, v] of this.buffers) out.buffers.set(n, tf.variable(v.clone(), false));
    return out;
  }

  /** Number of trainable scalars. */
  countTrainable(): number {
    let n = 0;
    for (const v of this.trainable.values()) n += v.size;
    return n;
  }

  /** Host copies of every parameter and buffer, for checkpoints and comparisons. */
  snapshot(): Map<string, Float32Array> {
    const out = new Map<string, Float32Array>();
    for (const [n, v] of [...this.trainable, ...this.buffers])
      out.set(n, v.dataSync() as Float32Array);
    return out;
  }

  /** Copies values (e.g. from a checkpoint) into every parameter and buffer; all must be present. */
  load(values: ReadonlyMap<string, Float32Array>, what = 'checkpoint'): void {
    const missing: string[] = [];
    for (const [n, v] of [...this.trainable, ...this.buffers]) {
      const x = values.get(n);
      if (!x) missing.push(n);
      else if (x.length !== v.size)
        throw new Error(
          `${what}: ${n} has ${x.length} values, the model expects ${v.size} (shape ${v.shape.join('×')}).`,
        );
    }
    if (missing.length > 0)
      throw new Error(`${what} lacks ${missing.length} parameter(s): ${missing.join(', ')}.`);
    for (const [n, v] of [...this.trainable, ...this.buffers])
      v.assign(tf.tensor(values.get(n)!, v.shape));
  }

  dispose(): void {
    for (const v of this.trainable.values()) v.dispose();
    for (const v of this.buffers.values()) v.dispose();
    this.trainable.clear();
    this.buffers.clear();
  }
}
