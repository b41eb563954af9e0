import * as tf from '@tensorflow/tfjs';
import { sgdMomentumUpdate } from './kernels/updates.js';

/**
 * SGD with momentum and weight decay, as torch.optim.SGD (dampening 0, no Nesterov):
 *   d = g + wd·θ;  b = μ·b + d  (b = d on the first step);  θ = θ − lr·b
 */
export class SgdMomentum {
  private readonly buffers = new Map<string, tf.Variable>();
  constructor(
    readonly momentum: number,
    readonly weightDecay: number,
  ) {}

  step(params: Map<string, tf.Variable>, grads: Record<string, tf.Tensor>, lr: number): void {
    const h = { lr, momentum: this.momentum, weightDecay: this.weightDecay };
    tf.tidy(() => {
      for (const [name, p] of params) {
        const g = grads[name];
        if (!g) continue;
        const b = this.buffers.get(name);
        // One pass per parameter where the backend has the fused kernel (kernels/updates.ts).
        const next = sgdMomentumUpdate(p, g, b ?? null, h);
        if (!b) this.buffers.set(name, tf.variable(next.b, false));
        else b.assign(next.b);
        p.assign(next.p);
      }
    });
  }

  /** Momentum buffers as host arrays, for checkpoints (empty before the first step). */
  state(): Map<string, Float32Array> {
    const out = new Map<string, Float32Array>();
    for (const [n, b] of this.buffers) out.set(n, b.dataSync() as Float32Array);
    return out;
  }

  /** Restores momentum buffers saved by `state()`; shapes come from the parameters. */
  loadState(state: ReadonlyMap<string, Float32Array>, params: Map<string, tf.Variable>): void {
    this.dispose();
    for (const [n, data] of state) {
      const p = params.get(n);
      if (!p) throw new Error(`Optimizer state names unknown parameter ${n}.`);
      if (p.size !== data.length)
        throw new Error(
          `Optimizer state for ${n} has ${data.length} values, the parameter ${p.size}.`,
        );
      this.buffers.set(n, tf.variable(tf.tensor(data, p.shape), false));
    }
  }

  dispose(): void {
    for (const b of this.buffers.values()) b.dispose();
    this.buffers.clear();
  }
}

/** Linear warm-up from 0 over `warmupIters`, then cosine decay to 0 at `totalIters`. */
export function learningRateAt(
  iter: number,
  baseLr: number,
  warmupIters: number,
  totalIters: number,
): number {
  if (iter < warmupIters) return (baseLr * iter) / warmupIters;
  const span = Math.max(1, totalIters - warmupIters);
  const progress = Math.min(1, (iter - warmupIters) / span);
  return 0.5 * baseLr * (1 + Math.cos(Math.PI * progress));
}
