import Database from 'better-sqlite3';
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { makeOutputFolder, mkdirReason } from './run-folder.js';

/**
 * The test set a Recall@K was measured on: which split, how many of its images, and the
 * `--labels` the run trained with. Recall@K on 256 of 600 images and on all 600 are different
 * numbers; they are only comparable when these agree.
 */
export interface TestSetInfo {
  split: string;
  /** Images scored. */
  images: number;
  /** Images in the whole split (more than `images` with --test-subset). */
  splitImages: number;
  /** The run's --labels (fine or coarse), or null for a model folder of no known run. */
  labels: string | null;
}

/** Columns added after the first release; rows written before them read as NULL (unknown). */
const ADDED_COLUMNS: [table: string, column: string, type: string][] = [
  ['recalls', 'split', 'TEXT'],
  ['recalls', 'test_images', 'INTEGER'],
  ['recalls', 'split_images', 'INTEGER'],
  ['recalls', 'labels', 'TEXT'],
  ['evaluations', 'split_images', 'INTEGER'],
  ['evaluations', 'labels', 'TEXT'],
];

/** "256 of the 600 test images, coarse labels" / "all 600 test images, fine labels" / "an unrecorded test set". */
export function describeTestSet(t: TestSetInfo | undefined): string {
  if (!t) return 'a test set not recorded (Recall@K stored before test sets were)';
  const which =
    t.images < t.splitImages
      ? `${t.images.toLocaleString('en')} of the ${t.splitImages.toLocaleString('en')} ${t.split} images`
      : `all ${t.images.toLocaleString('en')} ${t.split} images`;
  return `${which}, ${t.labels ?? 'unknown'} labels`;
}

/** The local runs database: one row per run, per-epoch metrics, Recall@K per evaluation. */
export class RunsDb {
  private readonly db: Database.Database;

  /**
   * Opens (creating it and its tables when missing) the runs database at `path`. A file that
   * cannot be opened, is damaged or is another SQLite database is refused with a sentence
   * naming it; nothing is written to it.
   */
  constructor(
    readonly path: string,
    opts: { readonly?: boolean } = {},
  ) {
    if (opts.readonly) {
      if (!existsSync(path))
        throw new Error(
          `Runs database ${path} does not exist; pass --runs-db with the file pnpm train wrote.`,
        );
      this.db = RunsDb.guard(
        path,
        () => new Database(path, { readonly: true, fileMustExist: true }),
      );
      RunsDb.guard(path, () => this.checkIsRunsDb());
      return;
    }
    RunsDb.checkPath(path);
    makeOutputFolder(dirname(path), '--runs-db');
    this.db = RunsDb.guard(path, () => new Database(path));
    RunsDb.guard(path, () => this.createTables());
  }

  /**
   * Whether `path` can be a runs database, without creating anything: an existing file must
   * open as one; otherwise its nearest existing folder must be a writable folder. Checked
   * before any model is built.
   */
  static checkPath(path: string): void {
    const cannot = (why: string) =>
      new Error(
        `Cannot open the runs database ${path} (${why}); pass --runs-db a file in a folder you can write to.`,
      );
    if (existsSync(path)) {
      if (statSync(path).isDirectory()) throw cannot('it is a folder');
      return;
    }
    let dir = dirname(path);
    while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
    if (!statSync(dir).isDirectory()) throw cannot(`${dir} is a file, not a folder`);
    try {
      accessSync(dir, constants.W_OK);
    } catch (err) {
      throw cannot(`${dir}: ${mkdirReason(err)}`);
    }
  }

  /** Runs `f`, turning SQLite's errors into sentences naming the runs database. */
  static guard<T>(path: string, f: () => T): T {
    try {
      return f();
    } catch (err) {
      if (
        !(err instanceof Database.SqliteError) &&
        (err as { code?: string }).code !== 'SQLITE_CANTOPEN'
      )
        throw err;
      const { code, message } = err as { code: string; message: string };
      if (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT'))
        throw new Error(
          `The runs database ${path} is damaged or not a SQLite file (${message}); pass --runs-db the runs.sqlite pnpm train wrote, or move this file away to start a new one.`,
        );
      throw new Error(
        `Cannot use the runs database ${path} (${message}); pass --runs-db a file in a folder you can write to.`,
      );
    }
  }

  /** A SQLite file holding tables but no `runs` table is something else (e.g. a dataset index). */
  private checkIsRunsDb(): void {
    const tables = (
      this.db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).all() as {
        name: string;
      }[]
    ).map((t) => t.name);
    if (tables.length > 0 && !tables.includes('runs'))
      throw new Error(
        `${this.path} is a SQLite database but not a runs database (its tables: ${tables.slice(0, 5).join(', ')}); pass --runs-db the runs.sqlite pnpm train wrote.`,
      );
  }

  private createTables(): void {
    this.checkIsRunsDb();
    this.db.pragma('journal_mode = WAL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT NOT NULL,
        dataset TEXT NOT NULL,
        method TEXT NOT NULL,
        config TEXT NOT NULL,
        backend TEXT,
        git_rev TEXT,
        wall_time_s REAL,
        images_per_s REAL
      );
      CREATE TABLE IF NOT EXISTS epochs (
        run_id INTEGER NOT NULL REFERENCES runs(id),
        epoch INTEGER NOT NULL,
        loss REAL NOT NULL,
        lr REAL NOT NULL,
        images_per_s REAL NOT NULL,
        PRIMARY KEY (run_id, epoch)
      );
      CREATE TABLE IF NOT EXISTS evaluations (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id INTEGER REFERENCES runs(id),
        created_at TEXT NOT NULL,
        model TEXT NOT NULL,
        index_path TEXT NOT NULL,
        split TEXT NOT NULL,
        images INTEGER NOT NULL,
        recalls TEXT NOT NULL
      );
      CREATE TABLE IF NOT EXISTS recalls (
        run_id INTEGER NOT NULL REFERENCES runs(id),
        epoch INTEGER NOT NULL,
        k INTEGER NOT NULL,
        recall REAL NOT NULL,
        PRIMARY KEY (run_id, epoch, k)
      );
    `);
    // Migration: a database written by an older version gains the new columns (NULL = unknown).
    this.db.transaction(() => {
      for (const [table, column, type] of ADDED_COLUMNS)
        if (!this.hasColumn(table, column))
          this.db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${type}`);
    })();
  }

  private hasColumn(table: string, column: string): boolean {
    const cols = this.db.prepare(`SELECT name FROM pragma_table_info(?)`).all(table) as {
      name: string;
    }[];
    return cols.some((c) => c.name === column);
  }

  startRun(r: {
    dataset: string;
    method: string;
    config: object;
    backend: string;
    gitRev: string | null;
  }): number {
    const info = this.db
      .prepare(
        `INSERT INTO runs (started_at, status, dataset, method, config, backend, git_rev) VALUES (?, 'running', ?, ?, ?, ?, ?)`,
      )
      .run(
        new Date().toISOString(),
        r.dataset,
        r.method,
        JSON.stringify(r.config),
        r.backend,
        r.gitRev,
      );
    return Number(info.lastInsertRowid);
  }

  logEpoch(
    runId: number,
    e: { epoch: number; loss: number; lr: number; imagesPerS: number },
  ): void {
    this.db
      .prepare(`INSERT OR REPLACE INTO epochs VALUES (?, ?, ?, ?, ?)`)
      .run(runId, e.epoch, e.loss, e.lr, e.imagesPerS);
  }

  /** Recall@K of a run after `epoch`, with the test set it was measured on. */
  logRecall(
    runId: number,
    epoch: number,
    recalls: { k: number; recall: number }[],
    testSet?: TestSetInfo,
  ): void {
    const st = this.db.prepare(
      `INSERT OR REPLACE INTO recalls (run_id, epoch, k, recall, split, test_images, split_images, labels) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.db.transaction(() => {
      for (const r of recalls)
        st.run(
          runId,
          epoch,
          r.k,
          r.recall,
          testSet?.split ?? null,
          testSet?.images ?? null,
          testSet?.splitImages ?? null,
          testSet?.labels ?? null,
        );
    })();
  }

  /**
   * The test set of a run's last Recall@K, or undefined when there is none or it was stored
   * before test sets were (an old database, read-only and so not migrated, included).
   */
  finalTestSet(runId: number): TestSetInfo | undefined {
    if (!this.hasColumn('recalls', 'test_images')) return undefined;
    const row = this.db
      .prepare(
        `SELECT split, test_images, split_images, labels FROM recalls WHERE run_id = ? AND epoch = (SELECT MAX(epoch) FROM recalls WHERE run_id = ?) LIMIT 1`,
      )
      .get(runId, runId) as
      | {
          split: string | null;
          test_images: number | null;
          split_images: number | null;
          labels: string | null;
        }
      | undefined;
    if (!row || row.split === null || row.test_images === null || row.split_images === null)
      return undefined;
    return {
      split: row.split,
      images: row.test_images,
      splitImages: row.split_images,
      labels: row.labels,
    };
  }

  finishRun(
    runId: number,
    status: 'finished' | 'failed' | 'diverged' | 'interrupted',
    wallTimeS: number,
    imagesPerS: number,
  ): void {
    this.db
      .prepare(
        `UPDATE runs SET finished_at = ?, status = ?, wall_time_s = ?, images_per_s = ? WHERE id = ?`,
      )
      .run(new Date().toISOString(), status, wallTimeS, imagesPerS, runId);
  }

  /** A stand-alone evaluation (`pnpm eval`): Recall@K of a model on a dataset split. */
  logEvaluation(e: {
    runId: number | null;
    model: string;
    indexPath: string;
    testSet: TestSetInfo;
    recalls: Record<number, number>;
  }): number {
    const info = this.db
      .prepare(
        `INSERT INTO evaluations (run_id, created_at, model, index_path, split, images, split_images, labels, recalls) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        e.runId,
        new Date().toISOString(),
        e.model,
        e.indexPath,
        e.testSet.split,
        e.testSet.images,
        e.testSet.splitImages,
        e.testSet.labels,
        JSON.stringify(e.recalls),
      );
    return Number(info.lastInsertRowid);
  }

  getRun(runId: number): RunRow | undefined {
    return this.db.prepare(`SELECT * FROM runs WHERE id = ?`).get(runId) as RunRow | undefined;
  }

  /** A resumed run forgets what it logged after its checkpoint (those epochs are trained again). */
  rewindRun(runId: number, epoch: number): void {
    this.db.transaction(() => {
      this.db.prepare(`DELETE FROM epochs WHERE run_id = ? AND epoch > ?`).run(runId, epoch);
      this.db.prepare(`DELETE FROM recalls WHERE run_id = ? AND epoch > ?`).run(runId, epoch);
      this.db
        .prepare(`UPDATE runs SET status = 'running', finished_at = NULL WHERE id = ?`)
        .run(runId);
    })();
  }

  listRuns(): RunRow[] {
    return this.db.prepare(`SELECT * FROM runs ORDER BY id`).all() as RunRow[];
  }

  epochs(runId: number): { epoch: number; loss: number; lr: number; images_per_s: number }[] {
    return this.db
      .prepare(`SELECT epoch, loss, lr, images_per_s FROM epochs WHERE run_id = ? ORDER BY epoch`)
      .all(runId) as never;
  }

  /** Every Recall@K a run logged, by epoch then K. */
  recalls(runId: number): { epoch: number; k: number; recall: number }[] {
    return this.db
      .prepare(`SELECT epoch, k, recall FROM recalls WHERE run_id = ? ORDER BY epoch, k`)
      .all(runId) as never;
  }

  /** Recall@K of the last evaluation of a run. */
  finalRecalls(runId: number): { k: number; recall: number }[] {
    return this.db
      .prepare(
        `SELECT k, recall FROM recalls WHERE run_id = ? AND epoch = (SELECT MAX(epoch) FROM recalls WHERE run_id = ?) ORDER BY k`,
      )
      .all(runId, runId) as never;
  }

  /** An existing runs database opened for reading only (reports); a missing file is named. */
  static openReadonly(path: string): RunsDb {
    return new RunsDb(path, { readonly: true });
  }

  close(): void {
    this.db.close();
  }
}

export interface RunRow {
  id: number;
  started_at: string;
  finished_at: string | null;
  status: string;
  dataset: string;
  method: string;
  config: string;
  backend: string | null;
  git_rev: string | null;
  wall_time_s: number | null;
  images_per_s: number | null;
}
