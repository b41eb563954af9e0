import { DEFAULT_CONFIG } from './config.js';
import { writeRunReport } from './report-html.js';

const USAGE = `usage: pnpm report RUN [--runs-db FILE] [--out DIR] [--tsne-points N] [--queries N] [--seed N]
Writes a self-contained HTML report of run RUN (config, hardware, curves, Recall@K, t-SNE of the
test embeddings, a retrieval grid) plus PNGs of the t-SNE and the grid, into DIR
(default: <runs dir>/<RUN>/report).`;

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.length === 0 || argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return;
  }
  const flags = new Map<string, string>();
  let run: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('--')) {
      const v = argv[i + 1];
      if (v === undefined) throw new Error(`Flag ${a} needs a value.`);
      if (!['--runs-db', '--out', '--tsne-points', '--queries', '--seed'].includes(a))
        throw new Error(`Unknown flag ${a}.\n${USAGE}`);
      flags.set(a, v);
      i++;
    } else if (run === undefined) run = a;
    else throw new Error(`Unexpected argument "${a}"; pass one run id.\n${USAGE}`);
  }
  const runId = Number(run);
  if (!Number.isInteger(runId) || runId <= 0)
    throw new Error(`RUN must be a run id (a positive integer, see pnpm runs), got "${run}".`);
  const num = (f: string) => (flags.has(f) ? Number(flags.get(f)) : undefined);
  const result = await writeRunReport({
    runsDb: flags.get('--runs-db') ?? DEFAULT_CONFIG.runsDb,
    runId,
    outDir: flags.get('--out'),
    tsnePoints: num('--tsne-points'),
    queries: num('--queries'),
    seed: num('--seed'),
  });
  for (const f of Object.values(result.files)) if (f) console.log(`wrote ${f}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`\nerror: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
