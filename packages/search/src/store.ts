import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';

/**
 * The embedding store: one SQLite file holding, per catalogue item, its L2-normalised feature
 * (float32 little-endian blob), where the image came from, its labels when known, and — once
 * for the whole file — the identity of the model that computed the features. Written in WAL
 * mode, one transaction per batch, so a process killed at any moment leaves only whole rows.
 */

export const STORE_FORMAT_VERSION = 1;

/** Who computed the vectors: a store only ever holds one model's features. */
export interface ModelIdentity {
  /** Run id when the model came from a run, else null. */
  runId: number | null;
  /** The exported model folder (TF.js layers model) the features were computed with. */
  modelDir: string;
  /** sha256 of the model topology and weights. */
  weightsHash: string;
  arch: string;
  /** [height, width, channels] of the network input. */
  inputShape: [number, number, number];
  mean: number[];
  std: number[];
  /** Feature size. */
  dim: number;
}

export type ItemKind = 'file' | 'index';

export interface StoreItem {
  id: number;
  /** Unique key of the item's origin: `file:<absolute path>` or `index:<file>#<split>/<row>`. */
  source: string;
  kind: ItemKind;
  /** Image file (kind file) or index file (kind index). */
  path: string;
  /** Index row (kind index), else null. */
  row: number | null;
  split: string | null;
  /** The folder, CSV or index+split the item was embedded from; pruning works per collection. */
  collection: string;
  coarseLabel: number | null;
  fineLabel: number | null;
  coarseName: string | null;
  fineName: string | null;
}

export interface NewItem extends Omit<StoreItem, 'id'> {
  size: number | null;
  mtimeMs: number | null;
  contentHash: string;
  /** dim floats, L2-normalised. */
  vector: Float32Array;
}

interface ItemRow {
  id: number;
  source: string;
  kind: ItemKind;
  path: string;
  row: number | null;
  split: string | null;
  collection: string;
  coarse_label: number | null;
  fine_label: number | null;
  coarse_name: string | null;
  fine_name: string | null;
}

const toItem = (r: ItemRow): StoreItem => ({
  id: r.id,
  source: r.source,
  kind: r.kind,
  path: r.path,
  row: r.row,
  split: r.split,
  collection: r.collection,
  coarseLabel: r.coarse_label,
  fineLabel: r.fine_label,
  coarseName: r.coarse_name,
  fineName: r.fine_name,
});

const ITEM_COLUMNS =
  'id, source, kind, path, row, split, collection, coarse_label, fine_label, coarse_name, fine_name';

export class EmbeddingStore {
  readonly file: string;
  private readonly db: Database.Database;
  private readonly byId: Database.Statement<[number], ItemRow>;
  private readonly stateBySource: Database.Statement<
    [string],
    { id: number; size: number | null; mtime_ms: number | null; content_hash: string }
  >;
  private readonly upsert: Database.Statement;
  private readonly touch: Database.Statement;

  private constructor(file: string, db: Database.Database) {
    this.file = file;
    this.db = db;
    this.byId = db.prepare(`SELECT ${ITEM_COLUMNS} FROM items WHERE id = ?`);
    this.stateBySource = db.prepare(
      'SELECT id, size, mtime_ms, content_hash FROM items WHERE source = ?',
    );
    this.upsert = db.prepare(
      `INSERT INTO items (source, kind, path, row, split, collection, coarse_label, fine_label,
         coarse_name, fine_name, size, mtime_ms, content_hash, vector, generation)
       VALUES (@source, @kind, @path, @row, @split, @collection, @coarseLabel, @fineLabel,
         @coarseName, @fineName, @size, @mtimeMs, @contentHash, @vector, @generation)
       ON CONFLICT(source) DO UPDATE SET kind = excluded.kind, path = excluded.path,
         row = excluded.row, split = excluded.split, collection = excluded.collection,
         coarse_label = excluded.coarse_label, fine_label = excluded.fine_label,
         coarse_name = excluded.coarse_name, fine_name = excluded.fine_name, size = excluded.size,
         mtime_ms = excluded.mtime_ms, content_hash = excluded.content_hash,
         vector = excluded.vector, generation = excluded.generation`,
    );
    this.touch = db.prepare(
      'UPDATE items SET generation = ?, size = ?, mtime_ms = ?, collection = ? WHERE id = ?',
    );
  }

  /** Opens (creating with `create`) a store file. */
  static open(file: string, opts: { create?: boolean; readonly?: boolean } = {}): EmbeddingStore {
    if (!opts.create && !existsSync(file))
      throw new Error(
        `No embedding store at ${file}; create one with \`pnpm embed RUN --out ${file} …\`.`,
      );
    let db: Database.Database;
    try {
      db = new Database(file, { readonly: opts.readonly === true, fileMustExist: !opts.create });
    } catch (err) {
      throw new Error(`Cannot open the embedding store ${file}: ${(err as Error).message}.`);
    }
    try {
      if (!opts.readonly) {
        db.pragma('journal_mode = WAL');
        db.pragma('synchronous = NORMAL');
        db.exec(`
          CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
          CREATE TABLE IF NOT EXISTS items (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL CHECK (kind IN ('file', 'index')),
            path TEXT NOT NULL,
            row INTEGER,
            split TEXT,
            collection TEXT NOT NULL,
            coarse_label INTEGER,
            fine_label INTEGER,
            coarse_name TEXT,
            fine_name TEXT,
            size INTEGER,
            mtime_ms INTEGER,
            content_hash TEXT NOT NULL,
            vector BLOB NOT NULL,
            generation INTEGER NOT NULL DEFAULT 0
          );
          CREATE INDEX IF NOT EXISTS items_collection ON items (collection, generation);
        `);
        const v = db.prepare("SELECT value FROM store_meta WHERE key = 'format'").get() as
          | { value: string }
          | undefined;
        if (!v)
          db.prepare("INSERT INTO store_meta (key, value) VALUES ('format', ?)").run(
            String(STORE_FORMAT_VERSION),
          );
      }
      const v = db.prepare("SELECT value FROM store_meta WHERE key = 'format'").get() as
        | { value: string }
        | undefined;
      if (v?.value !== String(STORE_FORMAT_VERSION))
        throw new Error(
          `format ${v?.value ?? 'unknown'}, this version reads format ${STORE_FORMAT_VERSION}; re-embed into a new store`,
        );
    } catch (err) {
      db.close();
      const msg = (err as Error).message;
      throw new Error(
        /file is not a database|no such table/.test(msg)
          ? `${file} is not an embedding store (${msg}); give a file written by \`pnpm embed\`.`
          : `Embedding store ${file}: ${msg}.`,
      );
    }
    return new EmbeddingStore(file, db);
  }

  close(): void {
    this.db.close();
  }

  /** The model identity recorded with the first vectors, or null for an empty new store. */
  model(): ModelIdentity | null {
    const r = this.db.prepare("SELECT value FROM store_meta WHERE key = 'model'").get() as
      | { value: string }
      | undefined;
    return r ? (JSON.parse(r.value) as ModelIdentity) : null;
  }

  setModel(m: ModelIdentity): void {
    this.db
      .prepare("INSERT OR REPLACE INTO store_meta (key, value) VALUES ('model', ?)")
      .run(JSON.stringify(m));
  }

  /** Removes every item (used when the store is re-embedded with another model). */
  clear(): void {
    this.db.exec('DELETE FROM items');
  }

  get size(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM items').get() as { n: number }).n;
  }

  /** The next generation number: items seen by an embedding pass are stamped with it. */
  nextGeneration(): number {
    const r = this.db.prepare('SELECT MAX(generation) AS g FROM items').get() as {
      g: number | null;
    };
    return (r.g ?? 0) + 1;
  }

  /** What the store knows about a source, for change detection. */
  state(
    source: string,
  ): { id: number; size: number | null; mtimeMs: number | null; contentHash: string } | undefined {
    const r = this.stateBySource.get(source);
    return r && { id: r.id, size: r.size, mtimeMs: r.mtime_ms, contentHash: r.content_hash };
  }

  /** Writes a batch in one transaction: new/changed items, and unchanged ones marked as seen. */
  writeBatch(
    items: readonly NewItem[],
    seen: readonly {
      id: number;
      size: number | null;
      mtimeMs: number | null;
      collection: string;
    }[],
    generation: number,
    model?: ModelIdentity,
  ): void {
    this.db.transaction(() => {
      if (model) this.setModel(model);
      for (const it of items) {
        const v = it.vector;
        this.upsert.run({
          ...it,
          vector: Buffer.from(v.buffer, v.byteOffset, v.byteLength),
          generation,
        });
      }
      for (const s of seen) this.touch.run(generation, s.size, s.mtimeMs, s.collection, s.id);
    })();
  }

  /** Deletes the items of `collection` not seen by the pass `generation`; returns how many. */
  prune(collection: string, generation: number): number {
    return this.db
      .prepare('DELETE FROM items WHERE collection = ? AND generation <> ?')
      .run(collection, generation).changes;
  }

  item(id: number): StoreItem | undefined {
    const r = this.byId.get(id);
    return r && toItem(r);
  }

  /** Distinct coarse label names, sorted. */
  coarseNames(): string[] {
    return (
      this.db
        .prepare(
          'SELECT DISTINCT coarse_name AS n FROM items WHERE coarse_name IS NOT NULL ORDER BY n',
        )
        .all() as { n: string }[]
    ).map((r) => r.n);
  }

  /** A page of items in id order (for browsing). */
  items(offset: number, limit: number): StoreItem[] {
    return (
      this.db
        .prepare(`SELECT ${ITEM_COLUMNS} FROM items ORDER BY id LIMIT ? OFFSET ?`)
        .all(limit, offset) as ItemRow[]
    ).map(toItem);
  }

  /**
   * Every vector in id order as one N×dim matrix, read row by row (one copy in memory), with
   * the ids and coarse names.
   */
  loadVectors(dim: number): { ids: Int32Array; vectors: Float32Array; coarse: (string | null)[] } {
    const n = this.size;
    const ids = new Int32Array(n);
    const vectors = new Float32Array(n * dim);
    const coarse: (string | null)[] = new Array(n);
    let i = 0;
    for (const r of this.db
      .prepare('SELECT id, coarse_name, vector FROM items ORDER BY id')
      .iterate() as IterableIterator<{ id: number; coarse_name: string | null; vector: Buffer }>) {
      if (i >= n) break; // rows added by a concurrent writer after counting
      if (r.vector.byteLength !== dim * 4)
        throw new Error(
          `${this.file}: item ${r.id} has a ${r.vector.byteLength}-byte vector, expected ${dim * 4} (dim ${dim}); the store is damaged — re-embed it.`,
        );
      ids[i] = r.id;
      coarse[i] = r.coarse_name;
      // Byte copy: a blob's offset in its Buffer need not be 4-aligned (little-endian hosts).
      new Uint8Array(vectors.buffer, i * dim * 4, dim * 4).set(r.vector);
      i++;
    }
    return { ids: ids.subarray(0, i), vectors: vectors.subarray(0, i * dim), coarse };
  }
}
