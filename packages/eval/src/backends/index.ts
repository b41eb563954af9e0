/**
 * Similarity backends. `exact` is the float64 JavaScript sweep (`recall.ts`, `parallel.ts`),
 * always available and the oracle of the tests; every other backend is a fast candidate source
 * whose proposals `exact-top-k.ts` resolves to the same lists. One registry line per source.
 */
import { openOnnxCandidates } from './onnx.js';
import type { CandidateSource } from './types.js';

export type { CandidateLists, CandidateSource } from './types.js';

type OpenCandidateSource = (
  gallery: Float32Array,
  n: number,
  dim: number,
  threads: number,
) => Promise<CandidateSource | string>;

/** Fast candidate sources, in the order `auto` tries them. */
const CANDIDATE_SOURCES: Record<string, OpenCandidateSource> = {
  onnxruntime: openOnnxCandidates,
};

/** `auto`: the first candidate source that loads, else exact. */
export type SimilarityBackend = 'auto' | 'exact' | 'onnxruntime';

export const SIMILARITY_BACKENDS: readonly SimilarityBackend[] = ['auto', 'exact', 'onnxruntime'];

/**
 * Opens the requested candidate source over the gallery (N×dim unit rows). Returns a sentence
 * instead when `auto` finds none or `exact` was asked for; throws when a named source cannot be
 * opened, since the caller asked for it explicitly.
 */
export async function openCandidateSource(
  backend: SimilarityBackend,
  gallery: Float32Array,
  n: number,
  dim: number,
  threads: number,
): Promise<CandidateSource | string> {
  if (!SIMILARITY_BACKENDS.includes(backend)) {
    throw new RangeError(
      `unknown similarity backend '${backend}'; use one of ${SIMILARITY_BACKENDS.join(', ')}.`,
    );
  }
  if (backend === 'exact') return 'the exact backend was requested';
  const names = backend === 'auto' ? Object.keys(CANDIDATE_SOURCES) : [backend];
  const reasons: string[] = [];
  for (const name of names) {
    const open = CANDIDATE_SOURCES[name];
    if (!open) throw new RangeError(`similarity backend '${name}' has no candidate source.`);
    const source = await open(gallery, n, dim, threads);
    if (typeof source !== 'string') return source;
    if (backend !== 'auto') throw new Error(`similarity backend '${name}': ${source}.`);
    reasons.push(source);
  }
  return reasons.join('; ');
}
