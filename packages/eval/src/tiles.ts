import { similarityTile } from './kernels.js';
import type { TopKNeighbours } from './topk.js';

/**
 * One block pair (I ≤ J) of the upper-triangle sweep: similarities of rows [i0, i0+chunk) ×
 * [j0, j0+chunk) into `tile`, each pair offered to both items' neighbour lists (a diagonal
 * block only offers j > i, so an item never retrieves itself).
 * x: N×dim unit rows; tile: chunk×chunk scratch.
 */
export function sweepBlockPair(
  x: Float32Array,
  dim: number,
  n: number,
  chunkSize: number,
  i0: number,
  j0: number,
  tile: Float64Array,
  neighbours: TopKNeighbours,
): void {
  const i1 = Math.min(i0 + chunkSize, n);
  const j1 = Math.min(j0 + chunkSize, n);
  const thresholds = neighbours.thresholds;
  similarityTile(x, dim, i0, i1, j0, j1, tile, chunkSize);
  const diagonal = j0 === i0;
  for (let i = i0; i < i1; i++) {
    const row = (i - i0) * chunkSize - j0;
    for (let j = diagonal ? i + 1 : j0; j < j1; j++) {
      // similarityTile filled row..row+j1 of the tile; i, j < n, the lists' count.
      const s = tile[row + j]!;
      // Cheap rejection first: most of the N² pairs are below both lists' thresholds.
      if (s >= thresholds[i]!) neighbours.offer(i, j, s);
      if (s >= thresholds[j]!) neighbours.offer(j, i, s);
    }
  }
}
