import { existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { Gallery } from './search.js';

/**
 * Approximate search for large galleries (`--ann`): an HNSW graph from usearch (prebuilt N-API
 * binaries inside its npm package), keyed by store id, cosine metric. The graph is saved next
 * to the store (`<store>.usearch` + `<store>.usearch.json`, which records the ids it covers) and
 * rebuilt when the store changed. `pnpm bench ann` measures its recall against exact search.
 */

type UsearchModule = typeof import('usearch');
type UsearchIndex = InstanceType<UsearchModule['Index']>;

/** HNSW parameters (usearch's names): graph degree and the candidate lists of add and search. */
export interface AnnParams {
  connectivity: number;
  expansionAdd: number;
  expansionSearch: number;
}
export const DEFAULT_ANN_PARAMS: AnnParams = {
  connectivity: 16,
  expansionAdd: 128,
  expansionSearch: 128,
};

let usearch: Promise<UsearchModule> | undefined;
export function loadUsearch(): Promise<UsearchModule> {
  usearch ??= (async () => {
    try {
      const name = 'usearch';
      const m = (await import(name)) as UsearchModule & { default?: UsearchModule };
      return m.Index ? m : (m.default as UsearchModule);
    } catch (err) {
      usearch = undefined;
      throw new Error(
        `--ann needs the usearch package, which did not load (${(err as Error).message.split('\n')[0]}); search without --ann, or reinstall with pnpm install.`,
      );
    }
  })();
  return usearch;
}

export class AnnIndex {
  private constructor(
    private readonly index: UsearchIndex,
    readonly dim: number,
  ) {}

  /** Builds the graph over every gallery row (keys = store ids). */
  static async build(
    g: Gallery,
    params: AnnParams = DEFAULT_ANN_PARAMS,
    threads = 0,
  ): Promise<AnnIndex> {
    const u = await loadUsearch();
    const index = new u.Index({
      dimensions: g.dim,
      metric: u.MetricKind.Cos,
      quantization: u.ScalarKind.F32,
      connectivity: params.connectivity,
      expansion_add: params.expansionAdd,
      expansion_search: params.expansionSearch,
      multi: false,
    });
    const chunk = 4096;
    for (let s = 0; s < g.ids.length; s += chunk) {
      const e = Math.min(g.ids.length, s + chunk);
      const keys = BigUint64Array.from(g.ids.subarray(s, e), (v) => BigInt(v));
      index.add(keys, g.vectors.subarray(s * g.dim, e * g.dim), threads);
    }
    return new AnnIndex(index, g.dim);
  }

  /** A saved graph, if it covers exactly the gallery's ids; else null. */
  static async open(storeFile: string, g: Gallery): Promise<AnnIndex | null> {
    const file = `${storeFile}.usearch`;
    const side = `${file}.json`;
    if (!existsSync(file) || !existsSync(side)) return null;
    let info: { count: number; idsHash: string; dim: number; bytes: number };
    try {
      info = JSON.parse(readFileSync(side, 'utf8'));
    } catch {
      return null;
    }
    if (info.count !== g.ids.length || info.dim !== g.dim || info.idsHash !== idsHash(g.ids))
      return null;
    if (statSync(file).size !== info.bytes) return null;
    const u = await loadUsearch();
    const index = new u.Index({
      dimensions: g.dim,
      metric: u.MetricKind.Cos,
      quantization: u.ScalarKind.F32,
      connectivity: DEFAULT_ANN_PARAMS.connectivity,
      expansion_add: DEFAULT_ANN_PARAMS.expansionAdd,
      expansion_search: DEFAULT_ANN_PARAMS.expansionSearch,
      multi: false,
    });
    index.load(file);
    return new AnnIndex(index, g.dim);
  }

  /** Saves the graph and the ids it covers (temporary files renamed into place). */
  save(storeFile: string, g: Gallery): void {
    const file = `${storeFile}.usearch`;
    const tmp = `${file}.tmp-${process.pid}`;
    try {
      this.index.save(tmp);
      const info = {
        count: g.ids.length,
        idsHash: idsHash(g.ids),
        dim: g.dim,
        bytes: statSync(tmp).size,
      };
      writeFileSync(`${tmp}.json`, JSON.stringify(info));
      renameSync(tmp, file);
      renameSync(`${tmp}.json`, `${file}.json`);
    } finally {
      rmSync(tmp, { force: true });
      rmSync(`${tmp}.json`, { force: true });
    }
  }

  /** Up to k (id, cosine) pairs, best first. */
  search(vector: Float32Array, k: number, threads = 1): { ids: number[]; scores: number[] } {
    const m = this.index.search(vector, k, threads);
    const ids: number[] = [];
    const scores: number[] = [];
    for (let i = 0; i < m.keys.length; i++) {
      ids.push(Number(m.keys[i]));
      scores.push(1 - m.distances[i]); // usearch's cosine distance is 1 − cos
    }
    return { ids, scores };
  }

  get size(): number {
    return this.index.size();
  }
}

/** FNV-1a over the ids: which items a saved graph covers. */
function idsHash(ids: Int32Array): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < ids.length; i++) {
    h ^= ids[i];
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return `${ids.length}:${h.toString(16)}`;
}
