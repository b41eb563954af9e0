/**
 * Per-query top-K neighbour lists for all N queries at once: N×K similarities + indices,
 * each list kept sorted best-first by insertion. Memory is O(N·K), never O(N²).
 *
 * Order is total: higher similarity first, and for equal similarity the lower item index
 * first. Because the order is total, the final lists do not depend on the order in which
 * candidates are offered.
 */
export class TopKNeighbours {
  readonly k: number;
  /** N×k similarities, best first. */
  readonly similarities: Float64Array;
  /** N×k item indices matching `similarities`. */
  readonly indices: Int32Array;
  /** N: how many entries of each list are filled (≤ k). */
  readonly counts: Int32Array;
  /**
   * N: similarity of the last entry of each full list, −Infinity while a list is not full.
   * A candidate with a lower similarity can be skipped without calling `offer`.
   */
  readonly thresholds: Float64Array;

  constructor(numQueries: number, k: number) {
    this.k = k;
    this.similarities = new Float64Array(numQueries * k);
    this.indices = new Int32Array(numQueries * k);
    this.counts = new Int32Array(numQueries);
    this.thresholds = new Float64Array(numQueries).fill(-Infinity);
  }

  /** Offers candidate item `candidate` with similarity `sim` to query `query`'s list. */
  offer(query: number, candidate: number, sim: number): void {
    const k = this.k;
    const sims = this.similarities;
    const idx = this.indices;
    const base = query * k;
    const count = this.counts[query];
    if (count === undefined)
      throw new RangeError(
        `TopKNeighbours.offer: query ${query} is not one of the ${this.counts.length} lists.`,
      );
    // base + k ≤ the arrays' length from here on.
    let pos: number;
    if (count === k) {
      const worst = base + k - 1;
      const ws = sims[worst]!;
      if (sim < ws || (sim === ws && candidate > idx[worst]!)) return;
      pos = k - 1; // the worst entry falls off
    } else {
      pos = count;
      this.counts[query] = count + 1;
    }
    while (pos > 0) {
      const prev = base + pos - 1;
      const ps = sims[prev]!;
      const pi = idx[prev]!;
      if (ps > sim || (ps === sim && pi < candidate)) break;
      sims[base + pos] = ps;
      idx[base + pos] = pi;
      pos--;
    }
    sims[base + pos] = sim;
    idx[base + pos] = candidate;
    if (this.counts[query] === k) this.thresholds[query] = sims[base + k - 1]!;
  }
}
