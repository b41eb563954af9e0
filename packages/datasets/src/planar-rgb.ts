/**
 * One image of a raw-pixel batch (CIFAR, ImageNet32): planar RGB (the R plane, then G, then
 * B, each side×side, row-major) starting at byte `at` of `planar` → a new HWC array.
 */
export function planarRgbToHwc(planar: Uint8Array, at: number, side: number): Uint8Array {
  const plane = side * side;
  const out = new Uint8Array(3 * plane);
  for (let p = 0; p < plane; p++) {
    out[3 * p] = planar[at + p];
    out[3 * p + 1] = planar[at + plane + p];
    out[3 * p + 2] = planar[at + 2 * plane + p];
  }
  return out;
}
