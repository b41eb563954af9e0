import type { ReplicaGroup } from '@maskcon/model';

/**
 * Collective operations between data-parallel replicas (one per worker thread), over
 * SharedArrayBuffers: an all-gather for the shuffled keys and an all-reduce (mean) for
 * gradients and BatchNorm statistics. Every replica sums the slots in rank order, so all
 * replicas obtain bit-identical results and stay identical after each SGD step.
 */
export type Collective = ReplicaGroup;

/** One replica: both operations are the identity. */
export class LocalCollective implements Collective {
  readonly rank = 0;
  readonly worldSize = 1;
  allGather(local: Float32Array): Float32Array {
    return local;
  }
  allReduceMean(local: Float32Array): Float32Array {
    return local;
  }
}

/** Shared memory of a collective group, allocated by the main thread and sent to each worker. */
export interface SharedCollectiveBuffers {
  /** [arrived, generation, aborted] */
  control: SharedArrayBuffer;
  /** worldSize slots of `gatherSlot` floats. */
  gather: SharedArrayBuffer;
  /** worldSize slots of `reduceSlot` floats. */
  reduce: SharedArrayBuffer;
  gatherSlot: number;
  reduceSlot: number;
}

export function allocateCollectiveBuffers(
  worldSize: number,
  gatherSlot: number,
  reduceSlot: number,
): SharedCollectiveBuffers {
  return {
    control: new SharedArrayBuffer(3 * 4),
    gather: new SharedArrayBuffer(worldSize * gatherSlot * 4),
    reduce: new SharedArrayBuffer(worldSize * reduceSlot * 4),
    gatherSlot,
    reduceSlot,
  };
}

/** Marks the group as failed and wakes every waiting replica (they then throw). */
export function abortCollective(buffers: SharedCollectiveBuffers): void {
  const control = new Int32Array(buffers.control);
  Atomics.store(control, 2, 1);
  Atomics.add(control, 1, 1);
  Atomics.notify(control, 1);
}

export class SharedCollective implements Collective {
  private control: Int32Array<ArrayBufferLike> = new Int32Array(0);
  private gather: Float32Array<ArrayBufferLike> = new Float32Array(0);
  private reduce: Float32Array<ArrayBufferLike> = new Float32Array(0);
  private buffers: SharedCollectiveBuffers = {
    control: new SharedArrayBuffer(0),
    gather: new SharedArrayBuffer(0),
    reduce: new SharedArrayBuffer(0),
    gatherSlot: 0,
    reduceSlot: 0,
  };

  /** Buffers are attached once their sizes are known (after the replica built its model). */
  constructor(
    readonly rank: number,
    readonly worldSize: number,
  ) {}

  attach(buffers: SharedCollectiveBuffers): void {
    this.buffers = buffers;
    this.control = new Int32Array(buffers.control);
    this.gather = new Float32Array(buffers.gather);
    this.reduce = new Float32Array(buffers.reduce);
  }

  /** Sense-reversing barrier on the generation counter. */
  private barrier(): void {
    const c = this.control;
    const gen = Atomics.load(c, 1);
    if (Atomics.add(c, 0, 1) === this.worldSize - 1) {
      Atomics.store(c, 0, 0);
      Atomics.add(c, 1, 1);
      Atomics.notify(c, 1);
    } else {
      while (Atomics.load(c, 1) === gen) Atomics.wait(c, 1, gen, 1000);
    }
    if (Atomics.load(c, 2) !== 0)
      throw new Error('Another training worker failed; stopping this one.');
  }

  allGather(local: Float32Array): Float32Array {
    const slot = this.buffers.gatherSlot;
    if (local.length > slot)
      throw new Error(`allGather of ${local.length} floats exceeds the slot of ${slot}.`);
    this.gather.set(local, this.rank * local.length);
    this.barrier();
    const out = this.gather.slice(0, this.worldSize * local.length);
    this.barrier(); // nobody overwrites the buffer before everyone has read it
    return out;
  }

  allReduceMean(local: Float32Array): Float32Array {
    const n = local.length;
    const slot = this.buffers.reduceSlot;
    if (n > slot) throw new Error(`allReduce of ${n} floats exceeds the slot of ${slot}.`);
    this.reduce.set(local, this.rank * slot);
    this.barrier();
    const r = this.reduce;
    const inv = 1 / this.worldSize;
    for (let i = 0; i < n; i++) {
      let s = r[i];
      for (let w = 1; w < this.worldSize; w++) s += r[w * slot + i];
      local[i] = s * inv;
    }
    this.barrier();
    return local;
  }
}
