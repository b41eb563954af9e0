import { existsSync } from 'node:fs';
import {
  describeNonFinite,
  firstNonFinite,
  readSafetensors,
  writeSafetensors,
  type NonFinite,
  type SafetensorsInput,
} from '@maskcon/model';
import type { TrainingState } from './parallel/protocol.js';
import type { TrainConfig } from './config.js';

export const CHECKPOINT_FORMAT = 'maskcon-checkpoint/1';

export interface CheckpointMeta {
  runId: number;
  /** Last completed epoch. */
  epoch: number;
  /**
   * Steps of the next epoch already trained: 0 at an epoch's end; more when a run stopped
   * mid-epoch on Ctrl-C/SIGTERM (a resumed run skips those batches).
   */
  step: number;
  /** Sum of those steps' losses (so the resumed epoch logs its whole mean loss). */
  epochLossSum: number;
  /** Iterations done (the learning-rate schedule's position). */
  iteration: number;
  config: TrainConfig;
}

/**
 * The first NaN/Inf of a training state (both encoders' parameters and BatchNorm running
 * statistics, optimizer momentum, the queue's keys), or undefined when all are finite.
 */
export function firstNonFiniteInState(state: TrainingState): NonFinite | undefined {
  return firstNonFinite(state.arrays);
}

/**
 * Writes the whole training state (both encoders, optimizer momentum, queue keys and labels)
 * as one safetensors file, atomically (temporary file + rename): a killed run leaves the
 * previous checkpoint intact. Data order and augmentation derive from (seed, epoch, step),
 * so no RNG state needs saving.
 */
export function saveCheckpoint(file: string, state: TrainingState, meta: CheckpointMeta): void {
  // Never replace a good checkpoint with a diverged state (the trainer checks first and stops).
  const bad = firstNonFiniteInState(state);
  if (bad)
    throw new Error(
      `Not writing checkpoint ${file}: ${describeNonFinite(bad, state.arrays.get(bad.name)!.length)}.`,
    );
  const tensors: [string, SafetensorsInput][] = [];
  for (const [name, data] of state.arrays) {
    tensors.push([
      name,
      { dtype: data instanceof Int32Array ? 'I32' : 'F32', shape: [data.length], data },
    ]);
  }
  writeSafetensors(file, tensors, {
    format: CHECKPOINT_FORMAT,
    run_id: String(meta.runId),
    epoch: String(meta.epoch),
    step: String(meta.step),
    epoch_loss_sum: String(meta.epochLossSum),
    iteration: String(meta.iteration),
    queue_ptr: String(state.queuePtr),
    queue_filled: String(state.queueFilled),
    config: JSON.stringify(meta.config),
  });
}

export function loadCheckpoint(file: string): { state: TrainingState; meta: CheckpointMeta } {
  if (!existsSync(file))
    throw new Error(
      `No checkpoint at ${file}: the run stopped before its first checkpoint; start it again instead of resuming.`,
    );
  const { tensors, metadata } = readSafetensors(file);
  if (metadata.format !== CHECKPOINT_FORMAT)
    throw new Error(
      `${file} is not a MaskCon checkpoint (format "${metadata.format ?? 'none'}", expected "${CHECKPOINT_FORMAT}").`,
    );
  const arrays = new Map<string, Float32Array | Int32Array>();
  for (const [name, t] of tensors) {
    if (!(t.data instanceof Float32Array || t.data instanceof Int32Array))
      throw new Error(
        `${file}: tensor ${name} has dtype ${t.dtype}; checkpoints hold F32 and I32 only.`,
      );
    arrays.set(name, t.data);
  }
  const bad = firstNonFinite(arrays);
  if (bad)
    throw new Error(
      `${file}: ${describeNonFinite(bad, arrays.get(bad.name)!.length)}; this checkpoint cannot be resumed. Start the run again (pnpm train with its settings), or restore a good copy of the file.`,
    );
  const num = (k: string) => {
    const v = Number(metadata[k]);
    if (!Number.isInteger(v) || v < 0)
      throw new Error(`${file}: metadata ${k} = "${metadata[k]}" is not a non-negative integer.`);
    return v;
  };
  return {
    state: { arrays, queuePtr: num('queue_ptr'), queueFilled: num('queue_filled') },
    meta: {
      runId: num('run_id'),
      epoch: num('epoch'),
      // Checkpoints written before mid-epoch stops hold whole epochs only.
      step: metadata.step === undefined ? 0 : num('step'),
      epochLossSum: Number(metadata.epoch_loss_sum ?? 0),
      iteration: num('iteration'),
      config: JSON.parse(metadata.config) as TrainConfig,
    },
  };
}
