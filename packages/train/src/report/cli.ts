import { createCommand, intOption, Option, pathOption, runCli } from '@maskcon/datasets';
import { DEFAULT_CONFIG } from '../config.js';
import { writeRunReport } from './run-report.js';

const program = createCommand(
  'pnpm report',
  'Write a self-contained HTML report of a run (config, hardware, curves, Recall@K, t-SNE of the test embeddings, a retrieval grid) plus PNGs of the t-SNE and the grid.',
)
  .argument('<run>', 'run id (see pnpm runs)', intOption('RUN', { min: 1 }))
  .addOption(
    new Option('--runs-db <file>', 'runs database ($MASKCON_RUNS)')
      .default(DEFAULT_CONFIG.runsDb)
      .argParser(pathOption('--runs-db')),
  )
  .addOption(
    new Option('--out <dir>', 'folder for report.html and the PNGs')
      .default('<runs dir>/<run>/report')
      .argParser(pathOption('--out')),
  )
  .addOption(
    new Option('--tsne-points <n>', 'most test embeddings in the t-SNE (seeded subsample; O(n²))')
      .default(2000)
      .argParser(intOption('--tsne-points', { min: 2 })),
  )
  .addOption(
    new Option('--queries <n>', 'queries in the retrieval grid')
      .default(8)
      .argParser(intOption('--queries', { min: 1 })),
  )
  .addOption(
    new Option('--seed <n>', 'seed of the t-SNE subsample and the queries')
      .default(0)
      .argParser(intOption('--seed')),
  );

async function main(): Promise<void> {
  program.parse();
  const runId = program.processedArgs[0] as number;
  const o = program.opts();
  const result = await writeRunReport({
    runsDb: o.runsDb as string,
    runId,
    outDir: program.getOptionValueSource('out') === 'default' ? undefined : (o.out as string),
    tsnePoints: o.tsnePoints as number,
    queries: o.queries as number,
    seed: o.seed as number,
  });
  for (const f of Object.values(result.files)) if (f) console.log(`wrote ${f}`);
}

runCli(main);
