import {
  CliError,
  createCommand,
  numberOption,
  Option,
  pathOption,
  runCli,
} from '@maskcon/datasets';
import { METHOD_NAMES } from '@maskcon/model';
import { addTrainOptions } from './options.js';
import { parseSweepArgs, runSweep } from './sweep.js';

/** Parser of a comma-separated list of numbers, each checked by `one`. */
const numberList = (flag: string) => {
  const one = numberOption(flag);
  return (raw: string): number[] => {
    const items = raw.split(',').filter((s) => s.trim() !== '');
    if (items.length === 0)
      throw new CliError(
        `${flag} takes numbers separated by commas, e.g. ${flag} 0.5,1; got "${raw}".`,
      );
    return items.map(one);
  };
};

const methodList = (raw: string): string[] => {
  const items = raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const bad = items.filter((m) => !(METHOD_NAMES as readonly string[]).includes(m));
  if (bad.length > 0)
    throw new CliError(
      `--baselines takes methods separated by commas (${METHOD_NAMES.join(', ')}); got "${bad.join(', ')}".`,
    );
  return items;
};

const program = addTrainOptions(
  createCommand(
    'pnpm sweep',
    'Run the w × τ grid (then each baseline) one run at a time, recording every run in the runs DB. Cells that already have a finished run with the same configuration are not trained again, so an interrupted sweep resumes. Writes DIR/sweep.md and DIR/sweep.html and prints the table.',
  ),
  ['w', 't'],
)
  .usage(
    '--dataset D --method maskcon --w 0.5,1 --t 0.05,0.1 [--baselines selfcon,grafit] [--out DIR] [any pnpm train flag]',
  )
  .addOption(
    new Option(
      '--w <list>',
      "weights w to sweep, comma-separated (default: the config's w)",
    ).argParser(numberList('--w')),
  )
  .addOption(
    new Option(
      '--t <list>',
      "temperatures τ to sweep, comma-separated (default: the config's τ)",
    ).argParser(numberList('--t')),
  )
  .addOption(
    new Option(
      '--baselines <methods>',
      'methods run once each with the base config, e.g. selfcon',
    ).argParser(methodList),
  )
  .addOption(
    new Option(
      '--out <dir>',
      'folder for sweep.md and sweep.html (default: runs/sweeps/<dataset>-<method>)',
    ).argParser(pathOption('--out')),
  );

async function main(): Promise<void> {
  // commander checks every flag and prints help; the sweep's grid is then read from the same argv.
  program.parse();
  const argv = process.argv.slice(2).filter((a) => a !== '--verbose');
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

runCli(main);
