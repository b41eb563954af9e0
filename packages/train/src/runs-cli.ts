import { createCommand, intOption, Option, pathOption, runCli } from '@maskcon/datasets';
import { DEFAULT_CONFIG } from './config.js';
import { RunsDb, type RunRow, type TestSetInfo } from './runs-db.js';
import { effectiveStatus } from './run-lock.js';
import { runFolder } from './run-folder.js';

function pct(rec: Map<number, number>, k: number): string {
  return (rec.has(k) ? (100 * rec.get(k)!).toFixed(2) : '-').padStart(7);
}

/** "256/600 test" (images scored / images in the split), or "unknown" for rows of older versions. */
function testSetCell(t: TestSetInfo | undefined): string {
  return t ? `${t.images}/${t.splitImages} ${t.split}` : 'unknown';
}

function list(db: RunsDb, path: string): void {
  const rows = db.listRuns();
  if (rows.length === 0) {
    console.log(`No runs in ${path} yet; start one with pnpm train.`);
    return;
  }
  console.log(
    '  id  status       dataset        method   w     τ      epochs  backend  img/s     R@1    R@2    R@5   R@10  test set         labels',
  );
  for (const r of rows) {
    const c = JSON.parse(r.config) as { w: number; t: number; epochs: number; labels?: string };
    const rec = new Map(db.finalRecalls(r.id).map((x) => [x.k, x.recall]));
    const testSet = rec.size > 0 ? db.finalTestSet(r.id) : undefined;
    const testCell = rec.size > 0 ? testSetCell(testSet) : '-';
    console.log(
      `${String(r.id).padStart(4)}  ${effectiveStatus(r.status, runFolder(path, r.id).lock).padEnd(11)}  ${r.dataset.padEnd(13)}  ${r.method.padEnd(7)}  ${String(c.w).padEnd(4)}  ${String(c.t).padEnd(5)}  ${String(c.epochs).padStart(6)}  ${(r.backend ?? '-').padEnd(7)}  ${(r.images_per_s ?? 0).toFixed(1).padStart(6)}${pct(rec, 1)}${pct(rec, 2)}${pct(rec, 5)}${pct(rec, 10)}  ${testCell.padEnd(15)}  ${testSet?.labels ?? c.labels ?? 'unknown'}`,
    );
  }
}

function compare(db: RunsDb, ids: number[]): void {
  const all = new Map(db.listRuns().map((r) => [r.id, r]));
  const runs: RunRow[] = ids.map((id) => {
    const r = all.get(id);
    if (!r) throw new Error(`No run ${id} in the runs database; \`pnpm runs\` lists them.`);
    return r;
  });
  const configs = runs.map((r) => JSON.parse(r.config) as Record<string, unknown>);
  const keys = [...new Set(configs.flatMap((c) => Object.keys(c)))].sort();
  const differing = keys.filter((k) => new Set(configs.map((c) => JSON.stringify(c[k]))).size > 1);
  const col = (s: string) => s.padStart(12);
  console.log('setting'.padEnd(16) + runs.map((r) => col(`run ${r.id}`)).join(''));
  for (const k of differing)
    console.log(k.padEnd(16) + configs.map((c) => col(String(c[k]))).join(''));
  if (differing.length === 0) console.log('(identical configurations)');
  console.log('backend'.padEnd(16) + runs.map((r) => col(r.backend ?? '-')).join(''));
  console.log(
    'images/s'.padEnd(16) + runs.map((r) => col((r.images_per_s ?? 0).toFixed(1))).join(''),
  );
  const recs = runs.map((r) => new Map(db.finalRecalls(r.id).map((x) => [x.k, x.recall])));
  for (const k of [1, 2, 5, 10, 50, 100]) {
    if (recs.every((m) => !m.has(k))) continue;
    console.log(`R@${k}`.padEnd(16) + recs.map((m) => col(pct(m, k).trim())).join(''));
  }
  // Recall@K of different test sets are different numbers: show what each was measured on.
  const sets = runs.map((r, i) => (recs[i].size > 0 ? testSetCell(db.finalTestSet(r.id)) : '-'));
  console.log('test set'.padEnd(16) + sets.map(col).join(''));
  if (new Set(sets).size > 1)
    console.log('(Recall@K measured on different test sets: not comparable)');
}

const program = createCommand('pnpm runs', 'List the runs in the runs database, or compare some.')
  .addOption(
    new Option('--runs-db <file>', 'runs database ($MASKCON_RUNS)')
      .default(DEFAULT_CONFIG.runsDb)
      .argParser(pathOption('--runs-db')),
  )
  .showHelpAfterError(false);

function withDb(fn: (db: RunsDb, path: string) => void): void {
  const path = program.opts().runsDb as string;
  const db = new RunsDb(path);
  try {
    RunsDb.guard(path, () => fn(db, path)); // a damaged page can surface in any query
  } finally {
    db.close();
  }
}

program
  .command('list', { isDefault: true })
  .description('every run with its status, settings, speed and final Recall@K (default)')
  // A mistyped command lands here as the default command's argument.
  .argument('[command]')
  .action((command: string | undefined) => {
    if (command !== undefined)
      throw new Error(`Unknown command "${command}"; use list or compare (see pnpm runs --help).`);
    withDb((db, path) => list(db, path));
  });

program
  .command('compare')
  .description('configuration differences and Recall@K of two or more runs side by side')
  .argument('<ids...>', 'run ids, e.g. 3 4', (raw: string, prev: number[] = []) => [
    ...prev,
    intOption('run id', { min: 1 })(raw),
  ])
  .action((ids: number[]) => {
    if (ids.length < 2)
      throw new Error('runs compare needs two or more run ids, e.g. `pnpm runs compare 3 4`.');
    withDb((db) => compare(db, ids));
  });

runCli(() => {
  program.parse();
});
