#!/usr/bin/env node
// `node scripts/readme-numbers.mjs [LOG]`: runs `pnpm main` (or reads the output of one from LOG),
// and rewrites the README block between the readme-numbers markers with what it printed: the
// Recall@K table, the test set it was measured on, the backend, the wall time and the machine.
import { spawn } from 'node:child_process';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const readme = join(repo, 'README.md');
const START = '<!-- readme-numbers:start -->';
const END = '<!-- readme-numbers:end -->';

async function runMain() {
  const t0 = performance.now();
  const child = spawn('pnpm', ['main'], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
    process.stdout.write(d);
  });
  child.stderr.on('data', (d) => {
    out += d;
    process.stderr.write(d);
  });
  const code = await new Promise((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`pnpm main exited with ${code}; README left unchanged.`);
  return { out, seconds: (performance.now() - t0) / 1000 };
}

function parse(out) {
  const lines = out.split('\n');
  const header = lines.findLastIndex((l) => /^\s*R@1\s+R@2\s+R@5\s+R@10\s*$/.test(l));
  if (header < 0) throw new Error('no Recall@K table in the output of pnpm main');
  const table = `${lines[header]}\n${lines[header + 1]}`;
  const summary = lines.find((l) => /^run \d+: .*fine-label Recall@K on /.test(l));
  // The run id in the summary's `pnpm eval N` hint means nothing to a README reader.
  const testSet =
    summary
      ?.replace(/^.*fine-label Recall@K on /, '')
      .replace(/; `pnpm eval \d+` scores them all/, '') ?? '?';
  const backend = lines.find((l) => l.startsWith('backend: '))?.replace(/^backend: /, '') ?? '?';
  const rate = /([\d.]+) images\/s training/.exec(out)?.[1] ?? '?';
  return { table, testSet, backend, rate };
}

const log = process.argv[2];
const { out, seconds } = log
  ? { out: readFileSync(log, 'utf8'), seconds: Number(process.env.WALL_SECONDS ?? Number.NaN) }
  : await runMain();
const p = parse(out);
const minutes = Number.isFinite(seconds)
  ? `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`
  : 'an unmeasured time';
const machine = `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
const block = `${START}
Measured on ${new Date().toISOString().slice(0, 10)} (${machine}): \`pnpm main\` took ${minutes} (index build and training),
training at ${p.rate} images/s on \`${p.backend}\`, and printed
Recall@K on ${p.testSet}:

\`\`\`
${p.table}
\`\`\`
${END}`;
const text = readFileSync(readme, 'utf8');
const a = text.indexOf(START);
const b = text.indexOf(END);
if (a < 0 || b < a) throw new Error(`README.md has no ${START} … ${END} block.`);
const tmp = `${readme}.tmp-${process.pid}`;
writeFileSync(tmp, text.slice(0, a) + block + text.slice(b + END.length));
renameSync(tmp, readme);
console.log(`README.md updated:\n${block}`);
