import { DEFAULT_CONFIG } from './config.js';
import { RunsDb } from './runs-db.js';

/** `pnpm runs [--runs-db FILE]`: every run with its config summary and final Recall@K. */
function main(): void {
  const argv = process.argv.slice(2);
  const i = argv.indexOf('--runs-db');
  const path = i >= 0 ? argv[i + 1] : DEFAULT_CONFIG.runsDb;
  const db = new RunsDb(path);
  const rows = db.listRuns();
  if (rows.length === 0) {
    console.log(`No runs in ${path} yet; start one with pnpm train.`);
    return;
  }
  console.log('  id  status    dataset        method   w     τ      epochs  backend  img/s     R@1    R@2    R@5   R@10');
  for (const r of rows) {
    const c = JSON.parse(r.config) as { w: number; t: number; epochs: number };
    const rec = new Map(db.finalRecalls(r.id).map((x) => [x.k, x.recall]));
    const pct = (k: number) => (rec.has(k) ? (100 * rec.get(k)!).toFixed(2) : '-').padStart(7);
    console.log(
      `${String(r.id).padStart(4)}  ${r.status.padEnd(8)}  ${r.dataset.padEnd(13)}  ${r.method.padEnd(7)}  ${String(c.w).padEnd(4)}  ${String(c.t).padEnd(5)}  ${String(c.epochs).padStart(6)}  ${(r.backend ?? '-').padEnd(7)}  ${(r.images_per_s ?? 0).toFixed(1).padStart(6)}${pct(1)}${pct(2)}${pct(5)}${pct(10)}`,
    );
  }
  db.close();
}

main();
