import { DEFAULT_CONFIG } from './config.js';
import { RunsDb, type RunRow } from './runs-db.js';

const USAGE = `usage: pnpm runs [list] [--runs-db FILE]
       pnpm runs compare ID ID [ID…] [--runs-db FILE]   config differences and Recall@K side by side`;

function pct(rec: Map<number, number>, k: number): string {
  return (rec.has(k) ? (100 * rec.get(k)!).toFixed(2) : '-').padStart(7);
}

function list(db: RunsDb, path: string): void {
  const rows = db.listRuns();
  if (rows.length === 0) {
    console.log(`No runs in ${path} yet; start one with pnpm train.`);
    return;
  }
  console.log(
    '  id  status    dataset        method   w     τ      epochs  backend  img/s     R@1    R@2    R@5   R@10',
  );
  for (const r of rows) {
    const c = JSON.parse(r.config) as { w: number; t: number; epochs: number };
    const rec = new Map(db.finalRecalls(r.id).map((x) => [x.k, x.recall]));
    console.log(
      `${String(r.id).padStart(4)}  ${r.status.padEnd(8)}  ${r.dataset.padEnd(13)}  ${r.method.padEnd(7)}  ${String(c.w).padEnd(4)}  ${String(c.t).padEnd(5)}  ${String(c.epochs).padStart(6)}  ${(r.backend ?? '-').padEnd(7)}  ${(r.images_per_s ?? 0).toFixed(1).padStart(6)}${pct(rec, 1)}${pct(rec, 2)}${pct(rec, 5)}${pct(rec, 10)}`,
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
}

function main(): void {
  const argv = process.argv.slice(2);
  if (argv.includes('--help')) {
    console.log(USAGE);
    return;
  }
  const i = argv.indexOf('--runs-db');
  const path = i >= 0 ? argv[i + 1] : DEFAULT_CONFIG.runsDb;
  const rest = i >= 0 ? [...argv.slice(0, i), ...argv.slice(i + 2)] : argv;
  const db = new RunsDb(path);
  try {
    if (rest.length === 0 || rest[0] === 'list') list(db, path);
    else if (rest[0] === 'compare') {
      const ids = rest.slice(1).map(Number);
      if (ids.length < 2 || ids.some((n) => !Number.isInteger(n)))
        throw new Error('runs compare needs two or more run ids, e.g. `pnpm runs compare 3 4`.');
      compare(db, ids);
    } else throw new Error(`Unknown command "${rest[0]}".\n${USAGE}`);
  } finally {
    db.close();
  }
}

try {
  main();
} catch (err) {
  process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
