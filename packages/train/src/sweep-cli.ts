import { parseSweepArgs, runSweep } from './sweep.js';

const USAGE = `usage: pnpm sweep --dataset D --method maskcon --w 0.5,1 --t 0.05,0.1 [--baselines selfcon,grafit] [--out DIR] [any pnpm train flag]
Runs the w × τ grid (then each baseline) one run at a time, recording every run in the runs DB.
Cells that already have a finished run with the same configuration are not trained again,
so an interrupted sweep resumes. Writes DIR/sweep.md and DIR/sweep.html (default DIR:
runs/sweeps/<dataset>-<method>) and prints the table.`;

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return;
  }
  const spec = parseSweepArgs(argv);
  const result = await runSweep(spec, {
    onCell: (i, total, cfg, reused) =>
      process.stderr.write(
        `\n[sweep ${i + 1}/${total}] ${cfg.method} w=${cfg.w} τ=${cfg.t}${reused ? ': finished run found in the runs DB, not trained again' : ''}\n`,
      ),
  });
  console.log(`\n${result.markdown}\n`);
  console.log(`wrote ${result.files.markdown} and ${result.files.html}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`\nerror: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
