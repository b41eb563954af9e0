/**
 * A backward pass that frees memory as it goes.
 *
 * tfjs-core's `engine.gradients` (behind tf.variableGrads / tf.grads) keeps, until the whole
 * backward pass ends, every tensor a kernel saved for its gradient and the gradient of every
 * intermediate tensor. At the end of the backward pass that is the forward activations plus one
 * gradient per activation: about twice the memory the gradients need. Walking the tape in
 * reverse, a node's output gradients and its saved tensors are not needed once that node's
 * input gradients exist (every consumer of an output comes later on the tape, so its gradient
 * is complete before its producer is reached, and each node saves its own clones). This
 * replacement releases both right there. Results are the same tensors computed by the same
 * kernels in the same order; only their lifetimes change. Higher-order gradients (a gradient
 * taken inside a gradient) keep tfjs's own implementation.
 */
import * as tf from '@tensorflow/tfjs';

interface TapeNode {
  id: number;
  kernelName: string;
  inputs: Record<string, tf.Tensor>;
  outputs: tf.Tensor[];
  gradient?: (dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>;
  saved?: tf.Tensor[];
}

/** The parts of tfjs-core's Engine this module drives (not part of tfjs's public types). */
interface EngineInternals {
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
  scopedRun<T>(start: () => void, end: () => void, f: () => T): T;
  startTape(): void;
  endTape(): void;
  tidy<T extends tf.TensorContainer>(name: string | (() => T), f?: () => T): T;
  gradients(
    f: () => tf.Tensor,
    xs: tf.Tensor[],
    dy?: tf.Tensor,
    allowNoGradients?: boolean,
  ): { value: tf.Tensor; grads: tf.Tensor[] };
  __maskconLeanGradients?: boolean;
  __tfjsGradients?: EngineInternals['gradients'];
}

/**
 * The nodes on a path from some x to y, in tape order, each with only the inputs that depend on
 * an x (the others need no gradient).
 */
export function nodesFromXsToY(
  tape: readonly TapeNode[],
  xs: readonly tf.Tensor[],
  y: tf.Tensor,
): TapeNode[] {
  const dependsOnX = new Set<number>(xs.map((x) => x.id));
  const fromX = new Set<number>();
  for (const node of tape) {
    if (Object.values(node.inputs).some((t) => dependsOnX.has(t.id))) {
      fromX.add(node.id);
      for (const o of node.outputs) dependsOnX.add(o.id);
    }
  }
  const leadsToY = new Set<number>([y.id]);
  const toY = new Set<number>();
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i];
    if (node.outputs.some((o) => leadsToY.has(o.id))) {
      toY.add(node.id);
      for (const t of Object.values(node.inputs)) leadsToY.add(t.id);
    }
  }
  const out: TapeNode[] = [];
  for (const node of tape) {
    if (!fromX.has(node.id) || !toY.has(node.id)) continue;
    const inputs: Record<string, tf.Tensor> = {};
    for (const [name, t] of Object.entries(node.inputs)) if (dependsOnX.has(t.id)) inputs[name] = t;
    out.push({ ...node, inputs });
  }
  return out;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** Replaces the engine's `gradients` by the memory-releasing version (idempotent). */
export function installLeanGradients(): void {
  const engine = tf.engine() as unknown as EngineInternals;
  if (engine.__maskconLeanGradients) return;
  const tfjsGradients = engine.gradients.bind(engine);
  engine.__tfjsGradients = engine.gradients;
  engine.gradients = function leanGradients(f, xs, dy, allowNoGradients = false) {
    if (engine.state.gradientDepth > 0) return tfjsGradients(f, xs, dy, allowNoGradients);
    if (xs.length === 0) throw new Error('gradients() received an empty list of xs.');
    if (dy != null && dy.dtype !== 'float32')
      throw new Error(`dy must have 'float32' dtype, but has '${dy.dtype}'`);
    const y = engine.scopedRun(
      () => engine.startTape(),
      () => engine.endTape(),
      () => engine.tidy('forward', f),
    );
    if (!(y instanceof tf.Tensor))
      throw new Error('The result y returned by f() must be a tensor.');
    const tape = engine.state.activeTape ?? [];
    const path = nodesFromXsToY(tape, xs, y);
    if (!allowNoGradients && path.length === 0) {
      throw new Error(
        'Cannot compute gradient of y=f(x) with respect to x. Make sure that the f you passed encloses all operations that lead from x to y.',
      );
    }
    return engine.tidy('backward', () => {
      const grad = new Map<number, tf.Tensor>();
      grad.set(y.id, dy ?? tf.ones(y.shape));
      const wanted = new Set(xs.map((x) => x.id));
      for (let i = path.length - 1; i >= 0; i--) {
        const node = path[i];
        if (node.gradient == null)
          throw new Error(
            `Cannot compute gradient: gradient function not found for ${node.kernelName}.`,
          );
        const fns = node.gradient(node.outputs.map((o) => grad.get(o.id) ?? null));
        for (const [name, x] of Object.entries(node.inputs)) {
          if (!(name in fns))
            throw new Error(
              `Cannot backprop through input ${name}. Available gradients found: ${Object.keys(fns)}.`,
            );
          const dx = engine.tidy(() => fns[name]());
          if (dx.dtype !== 'float32')
            throw new Error(
              `Error in gradient for op ${node.kernelName}. The gradient of input ${name} must have 'float32' dtype, but has '${dx.dtype}'`,
            );
          if (!sameShape(dx.shape, x.shape))
            throw new Error(
              `Error in gradient for op ${node.kernelName}. The gradient of input '${name}' has shape '${dx.shape}', which does not match the shape of the input '${x.shape}'`,
            );
          const prev = grad.get(x.id);
          if (prev == null) grad.set(x.id, dx);
          else {
            grad.set(x.id, tf.add(prev, dx));
            prev.dispose();
            dx.dispose();
          }
        }
        // Done with this node: its output gradients and its saved tensors are not needed again.
        for (const o of node.outputs) {
          const g = grad.get(o.id);
          if (g != null && !wanted.has(o.id) && g !== dy) {
            g.dispose();
            grad.delete(o.id);
          }
        }
        for (const t of node.saved ?? []) t.dispose();
      }
      const grads = xs.map((x) => grad.get(x.id)!);
      for (const node of tape) for (const t of node.saved ?? []) t.dispose();
      engine.state.activeTape = null;
      return { value: y, grads };
    });
  };
  engine.__maskconLeanGradients = true;
}

/** Restores tfjs-core's own `gradients` (for comparisons in tests). */
export function uninstallLeanGradients(): void {
  const engine = tf.engine() as unknown as EngineInternals;
  if (!engine.__maskconLeanGradients || !engine.__tfjsGradients) return;
  engine.gradients = engine.__tfjsGradients;
  engine.__maskconLeanGradients = false;
}
