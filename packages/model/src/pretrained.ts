/**
 * Pretrained backbone weights in torchvision's state-dict format, from either file format,
 * told apart by their first bytes:
 *  - torchvision's own `.pth` (a `torch.save` zip, read by ./pth.ts without running its pickle);
 *  - `.safetensors` (what `safetensors.torch.save_file(model.state_dict(), f)` produces).
 * Conv weights are OIHW in the file and HWIO in our parameter store.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import type { ParamStore } from './params.js';
import { isBackboneParam } from './resnet.js';
import {
  checkTorchStateDict,
  isLegacyTorchSave,
  isTorchZip,
  readTorchStateDict,
  type StateDictTensor,
} from './pth.js';
import { readSafetensors, writeSafetensors, type SafetensorsInput } from './safetensors.js';
import { describeNonFinite, firstNonFinite } from './finite.js';

export interface LoadPretrainedOptions {
  /**
   * Keep the randomly initialised `conv1.weight` when the checkpoint's stem kernel differs from
   * the model's (e.g. a 7×7 ImageNet stem and the small-image 3×3 stem). Everything else must match.
   */
  skipMismatchedStem?: boolean;
  /** Only tensors whose names start with this prefix are considered; it is stripped
   * (e.g. 'module.encoder_q.' or 'backbone.'). Default: none. */
  prefix?: string;
}

export interface LoadPretrainedReport {
  /** Parameters and buffers that were overwritten, in the model's order. */
  loaded: string[];
  /** Model parameters kept as they were (only `conv1.weight` with skipMismatchedStem). */
  skipped: string[];
  /** File tensors that were ignored on purpose (`fc.*`, `*.num_batches_tracked`, outside `prefix`). */
  ignored: string[];
  metadata: Record<string, string>;
  /** True when an RGB conv1 was summed over its input channels for a grey (1-channel) model. */
  greyStem: boolean;
}

export class PretrainedMismatchError extends Error {
  constructor(
    message: string,
    readonly missing: string[],
    readonly unexpected: string[],
    readonly mismatched: { name: string; file: number[]; model: number[] }[],
  ) {
    super(message);
  }
}

/** Our layout → torchvision's: HWIO → OIHW for conv weights, [in, out] → [out, in] for Linear. */
function torchShape(shape: readonly number[]): number[] {
  if (shape.length === 4) return [shape[3], shape[2], shape[0], shape[1]];
  if (shape.length === 2) return [shape[1], shape[0]];
  return [...shape];
}

const fmt = (s: readonly number[]): string => `[${s.join(', ')}]`;

function ignoredName(name: string): boolean {
  return name.startsWith('fc.') || name.endsWith('.num_batches_tracked');
}

/** The format of a weights file, told by its first bytes. */
function weightsFormat(file: string): 'pth' | 'safetensors' {
  const head = new Uint8Array(8);
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw new Error(`${file}: cannot read pretrained weights: ${(e as Error).message}`);
  }
  try {
    readSync(fd, head, 0, 8, 0);
  } finally {
    closeSync(fd);
  }
  if (isTorchZip(head)) return 'pth';
  if (isLegacyTorchSave(head)) {
    throw new Error(
      `${file}: written by torch.save before PyTorch 1.6 (legacy format), which is not read; re-save it with a newer PyTorch: torch.save(torch.load(f), 'new.pth').`,
    );
  }
  return 'safetensors';
}

/** A state dict read from a `.pth` or `.safetensors` file (format detected by its magic bytes). */
export function readStateDict(file: string): {
  tensors: Map<string, StateDictTensor>;
  metadata: Record<string, string>;
} {
  if (weightsFormat(file) === 'pth') return { tensors: readTorchStateDict(file), metadata: {} };
  return readSafetensors(file);
}

/**
 * Refuses a hostile or broken `.pth` before any work (its pickle is checked, its tensors are
 * not read); safetensors files are checked when loaded.
 */
export function checkPretrainedFile(file: string): void {
  if (weightsFormat(file) === 'pth') checkTorchStateDict(file);
}

/**
 * Loads torchvision-named backbone weights from a .pth or .safetensors file into `params` (the query
 * encoder; copy into a key encoder afterwards). Ignores `fc.*` and `num_batches_tracked`.
 * Any missing, unexpected or shape-mismatched tensor is an error listing all of them (shapes
 * in torchvision's OIHW layout); nothing is modified unless everything matches.
 */
export function loadPretrainedBackbone(
  params: ParamStore,
  file: string,
  opts: LoadPretrainedOptions = {},
): LoadPretrainedReport {
  const st = readStateDict(file);
  const prefix = opts.prefix ?? '';
  const ignored: string[] = [];
  const fileTensors = new Map<string, StateDictTensor>();
  for (const [rawName, t] of st.tensors) {
    if (!rawName.startsWith(prefix)) {
      ignored.push(rawName);
      continue;
    }
    const name = rawName.slice(prefix.length);
    if (ignoredName(name)) ignored.push(rawName);
    else fileTensors.set(name, t);
  }

  const model = new Map<string, tf.Variable>();
  for (const [n, v] of [...params.trainable, ...params.buffers])
    if (isBackboneParam(n)) model.set(n, v);

  const missing: string[] = [];
  const mismatched: { name: string; file: number[]; model: number[] }[] = [];
  const skipped: string[] = [];
  let greyStem = false;
  for (const [name, v] of model) {
    const t = fileTensors.get(name);
    if (!t) {
      missing.push(name);
      continue;
    }
    const want = torchShape(v.shape);
    if (fmt(t.shape) === fmt(want)) {
      if (!(t.data instanceof Float32Array)) {
        mismatched.push({ name, file: t.shape, model: want }); // integer dtype where a float is needed
      }
      continue;
    }
    // An RGB checkpoint on a grey model: summing conv1 over its 3 input channels gives the
    // response the RGB network has to the grey image replicated into R, G and B.
    if (
      name === 'conv1.weight' &&
      t.shape.length === 4 &&
      t.shape[1] === 3 &&
      want[1] === 1 &&
      fmt([t.shape[0], 1, t.shape[2], t.shape[3]]) === fmt(want)
    ) {
      greyStem = true;
      continue;
    }
    const stemOnly =
      name === 'conv1.weight' &&
      t.shape.length === 4 &&
      t.shape[0] === want[0] &&
      t.shape[1] === want[1];
    if (stemOnly && opts.skipMismatchedStem) skipped.push(name);
    else mismatched.push({ name, file: t.shape, model: want });
  }
  const unexpected = [...fileTensors.keys()].filter((n) => !model.has(n));

  if (missing.length || unexpected.length || mismatched.length) {
    const lines = [
      `${file}: pretrained weights do not match the model (names as in torchvision's state dict, conv shapes OIHW).`,
    ];
    if (missing.length)
      lines.push(`  missing from the file (${missing.length}): ${missing.join(', ')}`);
    if (unexpected.length) {
      lines.push(
        `  unexpected in the file (${unexpected.length}): ${unexpected.map((n) => `${n} ${fmt(fileTensors.get(n)!.shape)}`).join(', ')}`,
      );
    }
    if (mismatched.length) {
      lines.push(
        `  shape mismatch (${mismatched.length}): ${mismatched
          .map((m) => {
            const t = fileTensors.get(m.name)!;
            const dt =
              t.data instanceof Float32Array ? '' : ` (dtype ${t.dtype}, expected a float)`;
            return `${m.name} file ${fmt(m.file)} vs model ${fmt(m.model)}${dt}`;
          })
          .join(', ')}`,
      );
    }
    const stem = mismatched.find((m) => m.name === 'conv1.weight');
    if (
      stem &&
      stem.file.length === 4 &&
      stem.model.length === 4 &&
      stem.file[2] !== stem.model[2]
    ) {
      const fk = `${stem.file[2]}×${stem.file[3]}`;
      const mk = `${stem.model[2]}×${stem.model[3]}`;
      lines.push(
        stem.file[2] > stem.model[2]
          ? `  The checkpoint has the standard ${fk} stem conv, which cannot load into the small-image ${mk} stem: use --stem standard, or skip conv1 (keep it randomly initialised) with --skip-mismatched-stem (skipMismatchedStem).`
          : `  The checkpoint has a ${fk} stem conv but the model uses the standard ${mk} stem: use --stem small, or skip conv1 with --skip-mismatched-stem (skipMismatchedStem).`,
      );
    }
    if (!missing.length && !mismatched.length && unexpected.length && prefix === '') {
      lines.push('  If the names carry a prefix (e.g. module.), pass it as the prefix option.');
    }
    throw new PretrainedMismatchError(lines.join('\n'), missing, unexpected, mismatched);
  }

  // NaN/Inf weights would train to chance level without a word: refuse the file, untouched.
  const bad = firstNonFinite(
    [...model.keys()]
      .filter((n) => !skipped.includes(n))
      .map((n) => [n, fileTensors.get(n)!.data as Float32Array] as const),
  );
  if (bad)
    throw new Error(
      `${file}: ${describeNonFinite(bad, fileTensors.get(bad.name)!.data.length)}; the weights are damaged — download or export them again.`,
    );

  const loaded: string[] = [];
  for (const [name, v] of model) {
    if (skipped.includes(name)) continue;
    const t = fileTensors.get(name)!;
    tf.tidy(() => {
      let value: tf.Tensor = tf.tensor(t.data as Float32Array, t.shape, 'float32');
      if (greyStem && name === 'conv1.weight') value = tf.sum(value, 1, true); // O×3×H×W → O×1×H×W
      if (v.shape.length === 4)
        value = tf.transpose(value, [2, 3, 1, 0]); // OIHW → HWIO
      else if (v.shape.length === 2) value = tf.transpose(value); // [out, in] → [in, out]
      v.assign(value);
    });
    loaded.push(name);
  }
  return { loaded, skipped, ignored, metadata: st.metadata, greyStem };
}

/** Host copies of the backbone parameters and buffers in torchvision's layout and names. */
export function torchvisionBackboneState(
  params: ParamStore,
): Map<string, { shape: number[]; data: Float32Array }> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, v] of [...params.trainable, ...params.buffers]) {
    if (!isBackboneParam(name)) continue;
    const t = tf.tidy(() =>
      v.shape.length === 4
        ? tf.transpose(v, [3, 2, 0, 1])
        : v.shape.length === 2
          ? tf.transpose(v)
          : v.clone(),
    );
    out.set(name, { shape: t.shape, data: t.dataSync() as Float32Array });
    t.dispose();
  }
  return out;
}

/** Writes the backbone as a torchvision-compatible .safetensors file (atomically). */
export function saveBackboneSafetensors(
  params: ParamStore,
  file: string,
  opts: { dtype?: 'F32' | 'F16' | 'BF16'; metadata?: Record<string, string> } = {},
): void {
  const entries: [string, SafetensorsInput][] = [];
  for (const [name, t] of torchvisionBackboneState(params))
    entries.push([name, { dtype: opts.dtype ?? 'F32', shape: t.shape, data: t.data }]);
  writeSafetensors(file, entries, opts.metadata);
}
