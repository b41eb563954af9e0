/**
 * What the two oneDNN kernel sets share — kernels/native.ts (on the wasm heap) and
 * kernels/native-memory/ (on TypedArrays): the convolution geometry and cache key they hand to
 * @maskcon/native, and the "try oneDNN once per shape, remember a refusal" rule.
 */
import type * as tf from '@tensorflow/tfjs';
import type { ConvGeometry } from '@maskcon/native';

export const sizeOf = (shape: readonly number[]): number => shape.reduce((p, q) => p * q, 1);

export function convGeometry(info: tf.backend_util.Conv2DInfo): ConvGeometry {
  const p = info.padInfo;
  return {
    n: info.batchSize,
    h: info.inHeight,
    w: info.inWidth,
    ci: info.inChannels,
    kh: info.filterHeight,
    kw: info.filterWidth,
    co: info.outChannels,
    oh: info.outHeight,
    ow: info.outWidth,
    strides: [info.strideHeight, info.strideWidth],
    dilations: [info.dilationHeight, info.dilationWidth],
    pads: [p.top, p.bottom, p.left, p.right],
  };
}

export const convKey = (kernel: string, g: ConvGeometry, extra = ''): string =>
  `${kernel}[${g.n},${g.h},${g.w},${g.ci}]*[${g.kh},${g.kw},${g.co}] s${g.strides} d${g.dilations} p${g.pads}${extra}`;

/**
 * A `tryNative(kernel, key, run)` for one kernel set: runs `run` (which returns oneDNN's
 * implementation name, recorded in `implementations`) unless this key was refused before; a
 * refusal is logged once, tagged `[tag]`, and the caller falls back to its `fallback` kernel.
 */
export function oneDnnAttempts(
  tag: string,
  fallback: string,
  implementations: Map<string, string>,
): (kernel: string, key: string, run: () => string) => boolean {
  /** Geometries oneDNN refused, so they are not retried on every step. */
  const refused = new Set<string>();
  return (kernel, key, run) => {
    if (refused.has(key)) return false;
    try {
      implementations.set(key, run());
      return true;
    } catch (e) {
      refused.add(key);
      const msg = (e instanceof Error ? e.message : String(e)).split('\n')[0];
      console.warn(
        `[${tag}] ${kernel} ${key}: ${msg}; using the ${fallback} kernel for this shape`,
      );
      return false;
    }
  };
}
