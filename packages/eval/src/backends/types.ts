/** Each query's best `kp` gallery items by approximate (float32) similarity, best first. */
export interface CandidateLists {
  /** m×kp approximate cosine similarities, non-increasing along each row. */
  values: Float32Array;
  /** m×kp gallery indices matching `values`. */
  indices: Int32Array;
}

/**
 * A fast similarity kernel that proposes candidates; `exact-top-k.ts` turns them into the
 * exact lists. Its only contract is the error bound: every returned or omitted similarity is
 * within `errorBound` of the exact one (the float64 even/odd dot of `kernels.ts`).
 */
export interface CandidateSource {
  readonly name: string;
  readonly errorBound: number;
  /** Top-kp candidates of m query rows (m×d unit rows) against the whole gallery. */
  search(queries: Float32Array, m: number, kp: number): Promise<CandidateLists>;
  release(): Promise<void>;
}
