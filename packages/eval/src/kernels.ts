/**
 * Cosine-similarity tile kernel over L2-normalised float32 rows.
 *
 * Every dot product in this file is summed in exactly the same order — even-indexed
 * products into one accumulator, odd-indexed into another, then `even + odd` — whichever
 * kernel (2×2, 2×1, 1×2, 1×1) computes it. Identical rows therefore get bit-identical
 * similarities, so "equal similarity" ties really are equal and the index tie-break applies.
 *
 * The 2×2 register tile computes four dot products per pass over `k` (8 independent
 * accumulators: 4 dots × even/odd), loading 4 values for 4 multiply-adds instead of 8.
 * Measured faster in V8 than a single dot with 4 accumulators or a 2×2 tile with 16.
 */

/**
 * Fills `out[(i - i0) * stride + (j - j0)] = x_i · x_j` for i in [i0, i1), j in [j0, j1).
 * x: N×dim row-major; out: (i1-i0)×stride, stride ≥ j1-j0.
 */
export function similarityTile(
  x: Float32Array,
  dim: number,
  i0: number,
  i1: number,
  j0: number,
  j1: number,
  out: Float64Array,
  stride: number,
): void {
  // Every read below is inside these bounds, checked once here (hence the `!` on reads).
  if (i1 * dim > x.length || j1 * dim > x.length || i0 < 0 || j0 < 0)
    throw new RangeError(
      `similarityTile: rows [${i0}, ${i1}) × [${j0}, ${j1}) of dim ${dim} exceed the ${x.length} values given.`,
    );
  if ((i1 - i0 - 1) * stride + (j1 - j0) > out.length)
    throw new RangeError(
      `similarityTile: the output (${out.length} values) is smaller than the tile.`,
    );
  const dEven = dim - (dim & 1); // last index of the paired loop; an odd tail goes to `even`
  const hasTail = (dim & 1) === 1;
  let i = i0;
  for (; i + 1 < i1; i += 2) {
    const a = i * dim;
    const b = a + dim;
    const rowA = (i - i0) * stride - j0;
    const rowB = rowA + stride;
    let j = j0;
    for (; j + 1 < j1; j += 2) {
      const c = j * dim;
      const e = c + dim;
      let ac0 = 0,
        ac1 = 0,
        ae0 = 0,
        ae1 = 0,
        bc0 = 0,
        bc1 = 0,
        be0 = 0,
        be1 = 0;
      for (let k = 0; k < dEven; k += 2) {
        const a0 = x[a + k]!,
          a1 = x[a + k + 1]!;
        const b0 = x[b + k]!,
          b1 = x[b + k + 1]!;
        const c0 = x[c + k]!,
          c1 = x[c + k + 1]!;
        const e0 = x[e + k]!,
          e1 = x[e + k + 1]!;
        ac0 += a0 * c0;
        ac1 += a1 * c1;
        ae0 += a0 * e0;
        ae1 += a1 * e1;
        bc0 += b0 * c0;
        bc1 += b1 * c1;
        be0 += b0 * e0;
        be1 += b1 * e1;
      }
      if (hasTail) {
        const k = dEven;
        ac0 += x[a + k]! * x[c + k]!;
        ae0 += x[a + k]! * x[e + k]!;
        bc0 += x[b + k]! * x[c + k]!;
        be0 += x[b + k]! * x[e + k]!;
      }
      out[rowA + j] = ac0 + ac1;
      out[rowA + j + 1] = ae0 + ae1;
      out[rowB + j] = bc0 + bc1;
      out[rowB + j + 1] = be0 + be1;
    }
    if (j < j1) {
      // 2×1 edge: odd number of columns.
      const c = j * dim;
      let ac0 = 0,
        ac1 = 0,
        bc0 = 0,
        bc1 = 0;
      for (let k = 0; k < dEven; k += 2) {
        const c0 = x[c + k]!,
          c1 = x[c + k + 1]!;
        ac0 += x[a + k]! * c0;
        ac1 += x[a + k + 1]! * c1;
        bc0 += x[b + k]! * c0;
        bc1 += x[b + k + 1]! * c1;
      }
      if (hasTail) {
        ac0 += x[a + dEven]! * x[c + dEven]!;
        bc0 += x[b + dEven]! * x[c + dEven]!;
      }
      out[rowA + j] = ac0 + ac1;
      out[rowB + j] = bc0 + bc1;
    }
  }
  if (i < i1) {
    // 1×2 / 1×1 edge: odd number of rows.
    const a = i * dim;
    const rowA = (i - i0) * stride - j0;
    let j = j0;
    for (; j + 1 < j1; j += 2) {
      const c = j * dim;
      const e = c + dim;
      let ac0 = 0,
        ac1 = 0,
        ae0 = 0,
        ae1 = 0;
      for (let k = 0; k < dEven; k += 2) {
        const a0 = x[a + k]!,
          a1 = x[a + k + 1]!;
        ac0 += a0 * x[c + k]!;
        ac1 += a1 * x[c + k + 1]!;
        ae0 += a0 * x[e + k]!;
        ae1 += a1 * x[e + k + 1]!;
      }
      if (hasTail) {
        ac0 += x[a + dEven]! * x[c + dEven]!;
        ae0 += x[a + dEven]! * x[e + dEven]!;
      }
      out[rowA + j] = ac0 + ac1;
      out[rowA + j + 1] = ae0 + ae1;
    }
    if (j < j1) {
      const c = j * dim;
      let ac0 = 0,
        ac1 = 0;
      for (let k = 0; k < dEven; k += 2) {
        ac0 += x[a + k]! * x[c + k]!;
        ac1 += x[a + k + 1]! * x[c + k + 1]!;
      }
      if (hasTail) ac0 += x[a + dEven]! * x[c + dEven]!;
      out[rowA + j] = ac0 + ac1;
    }
  }
}

/**
 * x_a · y_b for rows a of x and b of y (both row-major with `dim` columns), summed in the same
 * order as `similarityTile` (even-indexed products, odd-indexed products, an odd tail into the
 * even sum, then `even + odd`), so it reproduces the tile's similarities bit for bit.
 */
export function exactDot(
  x: Float32Array,
  a: number,
  y: Float32Array,
  b: number,
  dim: number,
): number {
  const p = a * dim;
  const q = b * dim;
  if (a < 0 || b < 0 || p + dim > x.length || q + dim > y.length)
    throw new RangeError(`exactDot: row ${a} or ${b} of dim ${dim} is outside the vectors given.`);
  let even = 0;
  let odd = 0;
  let c = 0;
  for (; c + 1 < dim; c += 2) {
    even += x[p + c]! * y[q + c]!;
    odd += x[p + c + 1]! * y[q + c + 1]!;
  }
  if (c < dim) even += x[p + c]! * y[q + c]!;
  return even + odd;
}
