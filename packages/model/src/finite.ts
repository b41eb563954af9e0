/**
 * The first non-finite value (NaN, +Inf or −Inf) among named tensors, in their order: what a
 * loader or a checkpoint writer names when it refuses weights that went bad. Integer tensors
 * cannot hold one and are skipped.
 */
export interface NonFinite {
  name: string;
  /** Flat element index within the tensor. */
  index: number;
  value: number;
}

export function firstNonFinite(
  tensors: Iterable<readonly [string, ArrayLike<number>]>,
): NonFinite | undefined {
  for (const [name, data] of tensors) {
    if (!(data instanceof Float32Array || data instanceof Float64Array || Array.isArray(data)))
      continue;
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      // v - v is 0 for every finite v and NaN for NaN and ±Inf: one comparison per element.
      if (v - v !== 0) return { name, index: i, value: v };
    }
  }
  return undefined;
}

/** "tensor layer1.0.bn1.running_var holds NaN (element 3 of 8)" */
export function describeNonFinite(bad: NonFinite, length?: number): string {
  return `tensor ${bad.name} holds ${bad.value} (element ${bad.index}${length === undefined ? '' : ` of ${length}`})`;
}
