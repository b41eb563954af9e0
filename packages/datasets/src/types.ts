/** Which part of a dataset. Every dataset has a train and a test split. */
export type Split = 'train' | 'test';

/** An 8-bit image in HWC layout (row-major, channels interleaved). */
export interface ImageU8 {
  data: Uint8Array; // length height * width * channels
  height: number;
  width: number;
  channels: number; // 1 (grey) or 3 (RGB)
}

/**
 * The reader every dataset implements: one split of a coarse/fine-labelled image set.
 * Labels are 0-based ids into the class-name lists.
 */
export interface CoarseFineDataset {
  readonly name: string;
  readonly split: Split;
  readonly size: number;
  readonly fineClassNames: readonly string[];
  readonly coarseClassNames: readonly string[];
  /**
   * Per-channel mean and standard deviation (population) of the TRAIN split's pixels scaled
   * to [0, 1], computed when the index was built. Length = channel count. The trainer
   * normalises with these, whichever split it reads.
   */
  readonly channelMean: readonly number[];
  readonly channelStd: readonly number[];
  /**
   * The side of the square crops training should use, when the index records one (csv
   * datasets built with `--image-size`, default 224); undefined otherwise (the paper's
   * datasets have theirs in the recipe table).
   */
  readonly imageSize?: number;
  /** Per-image fine label, length `size`. */
  fineLabels(): Int32Array;
  /** Per-image coarse label, length `size`. */
  coarseLabels(): Int32Array;
  /** Image `i` (0 ≤ i < size) of this split. */
  image(i: number): ImageU8;
  /** Several images at once (faster than calling `image` in a loop). */
  images(indices: ArrayLike<number>): ImageU8[];
  /**
   * The file image `i` was decoded from when the dataset was built from image files (SOP,
   * Cars196, csv); null for datasets stored from raw pixels (CIFAR, ImageNet32, Fashion-MNIST).
   * Optional: readers that do not know their sources may leave it out.
   */
  sourcePath?(i: number): string | null;
  close(): void;
}
