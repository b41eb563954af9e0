import type { Split } from '@maskcon/datasets';
import type { PipelineFamily, PipelineKind } from './pipeline.js';

/**
 * A pipeline as data, rebuilt inside each worker: its kind, size, normalisation and family (a
 * dataset's values come from its recipe, @maskcon/train's recipes.ts).
 */
export interface PipelineSpec {
  kind: PipelineKind;
  size: number;
  mean: readonly number[];
  std: readonly number[];
  family?: PipelineFamily;
}

/** What every worker is started with. */
export interface WorkerConfig {
  indexPath: string;
  split: Split;
  query: PipelineSpec;
  key: PipelineSpec;
}

/** Main → worker: augment the images `indices` as batch `batch` of `epoch`. */
export interface BatchTask {
  type: 'task';
  id: number;
  seed: number;
  epoch: number;
  batch: number;
  indices: Int32Array;
  /**
   * Arrays of a batch the consumer gave back (BatchLoader.release), transferred with the
   * task: the worker writes the views into them when they have exactly the needed length.
   */
  recycled?: { query: Float32Array; key: Float32Array };
}

/** Worker → main. Buffers are transferred, not copied. */
export type WorkerReply =
  | { type: 'ready' }
  | {
      type: 'batch';
      id: number;
      query: Float32Array;
      key: Float32Array;
      coarseLabels: Int32Array;
      fineLabels: Int32Array;
      size: number;
      channels: number;
    }
  | { type: 'error'; id: number | null; message: string };
