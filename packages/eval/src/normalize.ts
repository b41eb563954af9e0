/**
 * Row-wise L2 normalisation of a row-major `N×dim` matrix.
 *
 * Returns a new Float32Array (N×dim); the input is not modified. A row whose norm is 0 stays
 * all zeros (cosine similarity 0 to everything) instead of becoming NaN. The norm is
 * accumulated in double precision so that tiny or huge float32 values do not under/overflow.
 */
export function l2NormalizeRows(embeddings: Float32Array, dim: number): Float32Array {
  if (!Number.isInteger(dim) || dim <= 0) {
    throw new RangeError(`l2NormalizeRows: dim must be a positive integer, got ${dim}.`);
  }
  if (embeddings.length % dim !== 0) {
    throw new RangeError(
      `l2NormalizeRows: embeddings has ${embeddings.length} values, which is not a multiple of dim ${dim}.`,
    );
  }
  const n = embeddings.length / dim; // an integer: checked above
  const out = new Float32Array(embeddings.length); // N×dim
  for (let r = 0; r < n; r++) {
    const row = embeddings.subarray(r * dim, (r + 1) * dim);
    let sq = 0;
    for (const v of row) sq += v * v;
    if (sq === 0) continue;
    const inv = 1 / Math.sqrt(sq);
    for (let c = 0; c < dim; c++) out[r * dim + c] = row[c]! * inv;
  }
  return out;
}
