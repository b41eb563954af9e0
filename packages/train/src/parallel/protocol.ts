import type { TrainConfig } from '../config.js';
import type { SharedCollectiveBuffers } from './collective.js';
import type { BatchViews } from '../replica.js';

/** A replica's full training state (MaskConModel.exportState). */
export interface TrainingState {
  arrays: Map<string, Float32Array | Int32Array>;
  queuePtr: number;
  queueFilled: number;
}

/** Messages from the trainer to a worker. */
export type WorkerRequest =
  | { type: 'init'; cfg: TrainConfig; indexPath: string; rank: number; worldSize: number }
  | { type: 'attach'; buffers: SharedCollectiveBuffers }
  | {
      type: 'fill';
      indices: Int32Array;
      labels: Int32Array;
      epoch: number;
      step: number;
      views?: BatchViews;
    }
  | {
      type: 'step';
      indices: Int32Array;
      labels: Int32Array;
      epoch: number;
      step: number;
      lr: number;
      views?: BatchViews;
    }
  | { type: 'takeLoss' }
  | { type: 'embed'; indices: Int32Array }
  | { type: 'snapshot' }
  | { type: 'exportState' }
  | { type: 'exportModel'; dir: string }
  | { type: 'importState'; state: TrainingState }
  | { type: 'close' };

/** Messages from a worker to the trainer. */
export type WorkerReply =
  | { type: 'ready'; backend: string; logs: string[]; reduceSize: number; params: number }
  | { type: 'done' }
  | { type: 'loss'; sum: number }
  | { type: 'features'; features: Float32Array; dim: number }
  | { type: 'snapshot'; params: Map<string, Float32Array> }
  | { type: 'state'; state: TrainingState }
  | { type: 'error'; message: string };
