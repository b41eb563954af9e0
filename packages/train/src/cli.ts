import { parseTrainArgs } from './config.js';
import { train } from './trainer.js';
import { formatRunTable } from './report.js';

const USAGE = `usage: pnpm train --dataset fashion_mnist [--preset quick|paper|tiny] [--method maskcon|selfcon|grafit|supfine]
       [--epochs N] [--batch-size N] [--lr X] [--wd X] [--warmup-epochs N] [--w X] [--t X] [--t0 X] [--K N] [--m X]
       [--width N] [--bn-splits N] [--labels coarse|fine] [--train-subset N] [--test-subset N] [--eval-every N]
       [--seed N] [--backend auto|tfjs-node-gpu|tfjs-node|wasm|cpu] [--index FILE] [--runs-db FILE]`;

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return;
  }
  const cfg = parseTrainArgs(argv);
  const result = await train(cfg);
  console.log(`\nrun ${result.runId}: ${cfg.method} on ${cfg.dataset} (w=${cfg.w}, τ=${cfg.t}, seed ${cfg.seed}) — fine-label Recall@K on the test split`);
  console.log(formatRunTable(result));
}

main().catch((err: unknown) => {
  process.stderr.write(`\nerror: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
