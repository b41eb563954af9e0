/**
 * Small helpers for writing wasm kernels that are compositions of other wasm
 * kernels. They call the registered wasm kernel functions directly on
 * TensorInfos (no engine, no tape, no tidy), so every intermediate must be
 * released with `Scratch.dispose()`.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

export type WasmBackend = BackendWasm;
export type Info = tf.TensorInfo;
export type Explicit4 = [[number, number], [number, number], [number, number], [number, number]];

/** Runs the wasm kernel `name` directly. */
export function callWasm(
  name: string,
  backend: WasmBackend,
  inputs: tf.NamedTensorInfoMap,
  attrs: tf.NamedAttrMap = {},
): Info {
  const config = tf.getKernel(name, 'wasm');
  if (config == null) throw new Error(`wasm kernel '${name}' is not registered`);
  const out = config.kernelFunc({ inputs, attrs, backend });
  if (Array.isArray(out)) throw new Error(`wasm kernel '${name}' returned several outputs`);
  return out;
}

/** Tracks intermediate TensorInfos so they can be freed in one go. */
export class Scratch {
  private readonly infos: Info[] = [];
  constructor(readonly backend: WasmBackend) {}

  keep<T extends Info>(info: T): T {
    this.infos.push(info);
    return info;
  }

  call(name: string, inputs: tf.NamedTensorInfoMap, attrs: tf.NamedAttrMap = {}): Info {
    return this.keep(callWasm(name, this.backend, inputs, attrs));
  }

  transpose(x: Info, perm: number[]): Info {
    return this.call('Transpose', { x }, { perm });
  }

  reshape(x: Info, shape: number[]): Info {
    return this.call('Reshape', { x }, { shape });
  }

  slice(x: Info, begin: number[], size: number[]): Info {
    let noop = true;
    for (let i = 0; i < x.shape.length; i++) {
      if (begin[i] !== 0 || size[i] !== x.shape[i]) noop = false;
    }
    if (noop) return x;
    return this.call('Slice', { x }, { begin, size });
  }

  /** Forward NHWC convolution, stride 1 unless given, explicit padding. */
  conv2d(
    x: Info,
    filter: Info,
    pad: Explicit4,
    dilations: [number, number] = [1, 1],
    strides: [number, number] = [1, 1],
  ): Info {
    return this.call('Conv2D', { x, filter }, {
      strides,
      pad,
      dataFormat: 'NHWC',
      dilations,
      dimRoundingMode: undefined,
    } as unknown as tf.NamedAttrMap);
  }

  /** Stops tracking `infos` (the caller released them already). */
  forget(infos: Info[]): void {
    const drop = new Set(infos);
    let w = 0;
    for (const info of this.infos) if (!drop.has(info)) this.infos[w++] = info;
    this.infos.length = w;
  }

  /** Releases one reference for every tracked info except the ones in `except`. */
  dispose(except: Info[] = []): void {
    const keep = new Set(except);
    for (const info of this.infos) {
      if (!keep.has(info)) this.backend.disposeData(info.dataId);
    }
    this.infos.length = 0;
  }
}

/** Normalises Conv2D-style strides to [h, w]. */
export function pair(v: number | [number, number]): [number, number] {
  return typeof v === 'number' ? [v, v] : [v[0], v[1]];
}

export function assertNHWC(dataFormat: unknown, kernel: string): void {
  if (dataFormat != null && dataFormat !== 'NHWC') {
    throw new Error(
      `${kernel} (maskcon wasm kernel) supports only dataFormat 'NHWC', got '${String(dataFormat)}'`,
    );
  }
}
