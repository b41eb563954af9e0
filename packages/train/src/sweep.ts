import { availableParallelism } from 'node:os';
import { writeFileSync } from 'node:fs';
import { makeOutputFolder } from './run-folder.js';
import { join } from 'node:path';
import { METHODS, methodOf, type MethodName } from '@maskcon/model';
import { resolveWorkers, type TrainConfig } from './config.js';
import { parseTrainArgs } from './options.js';
import { RunsDb } from './runs-db.js';
import { train, type TrainHooks } from './trainer.js';

/** The Ks of the seed's Tables 4–8. */
export const SWEEP_KS = [1, 2, 5, 10] as const;

export interface SweepSpec {
  /** Every other training flag (dataset, preset, epochs, seed, runs DB, …), shared by all cells. */
  base: TrainConfig;
  method: MethodName;
  ws: number[];
  ts: number[];
  /** Methods run once each with the base config, listed below the grid (e.g. selfcon). */
  baselines: MethodName[];
  /** Folder for sweep.md and sweep.html. */
  outDir: string;
}

export interface SweepRow {
  method: MethodName;
  /** null for baselines, whose target has no w / τ. */
  w: number | null;
  t: number | null;
  runId: number;
  /** true when a finished run with the same configuration was found and not trained again. */
  reused: boolean;
  /** Recall@K as fractions, keyed by K. */
  recalls: Record<number, number>;
}

export interface SweepResult {
  rows: SweepRow[];
  /** Index into rows of the best cell (highest R@1, then R@2, R@5, R@10). */
  best: number;
  markdown: string;
  html: string;
  files: { markdown: string; html: string };
}

/**
 * Keys that do not change what a run computes: the worker count (same update up to float
 * summation order), where runs are stored, how often checkpoints are written.
 */
const NON_RESULT_KEYS = new Set(['workers', 'runsDb', 'checkpointEvery']);

/** A configuration reduced to the keys that determine a run's result, as canonical JSON. */
export function configKey(cfg: object): string {
  const entries = Object.entries(cfg)
    .filter(([k, v]) => !NON_RESULT_KEYS.has(k) && v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify(entries);
}

/** Splits a sweep command line into the grid flags and the training flags they share. */
export function parseSweepArgs(argv: string[]): SweepSpec {
  const take = (flag: string): string | undefined => {
    const i = argv.findIndex((a) => a === `--${flag}` || a.startsWith(`--${flag}=`));
    if (i < 0) return undefined;
    const a = argv[i];
    const value = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[i + 1];
    if (value === undefined || (!a.includes('=') && value.startsWith('--')))
      throw new Error(`Flag --${flag} needs a value.`);
    argv = [...argv.slice(0, i), ...argv.slice(a.includes('=') ? i + 1 : i + 2)];
    return value;
  };
  const numbers = (flag: string, raw: string | undefined, fallback: number): number[] => {
    if (raw === undefined) return [fallback];
    const list = raw
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '')
      .map(Number);
    if (list.length === 0 || list.some((v) => !Number.isFinite(v)))
      throw new Error(
        `--${flag} needs a comma-separated list of numbers, e.g. --${flag} 0.5,1; got "${raw}".`,
      );
    return [...new Set(list)];
  };
  const wRaw = take('w');
  const tRaw = take('t');
  const baselinesRaw = take('baselines');
  const outRaw = take('out');
  const base = parseTrainArgs(argv); // validates every shared flag (and the method name)
  const ws = numbers('w', wRaw, base.w);
  const ts = numbers('t', tRaw, base.t);
  for (const w of ws) parseTrainArgs([...argv, '--w', String(w)]);
  for (const t of ts) parseTrainArgs([...argv, '--t', String(t)]);
  const baselines = (baselinesRaw ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '') as MethodName[];
  for (const b of baselines) parseTrainArgs([...argv, '--method', b]);
  const outDir = outRaw ?? join('runs', 'sweeps', `${base.dataset}-${base.method}`);
  return { base, method: base.method, ws, ts, baselines, outDir };
}

/** The cells of a sweep in table order: the w × τ grid, then one row per baseline. */
export function sweepCells(
  spec: SweepSpec,
): { cfg: TrainConfig; w: number | null; t: number | null }[] {
  const cells: { cfg: TrainConfig; w: number | null; t: number | null }[] = [];
  for (const w of spec.ws)
    for (const t of spec.ts) cells.push({ cfg: { ...spec.base, method: spec.method, w, t }, w, t });
  for (const b of spec.baselines) {
    const cfg: TrainConfig = {
      ...spec.base,
      method: b,
      labels: METHODS[b].labels === 'fine' ? 'fine' : spec.base.labels,
    };
    cells.push({ cfg, w: null, t: null });
  }
  return cells;
}

/**
 * Runs a sweep sequentially, skipping every cell for which the runs DB already holds a
 * finished run with the same configuration (so an interrupted sweep resumes where it stopped),
 * then writes the table as Markdown and HTML into spec.outDir.
 */
export async function runSweep(
  spec: SweepSpec,
  hooks: TrainHooks & {
    onCell?: (i: number, total: number, cfg: TrainConfig, reused: boolean) => void;
  } = {},
): Promise<SweepResult> {
  const cells = sweepCells(spec);
  makeOutputFolder(spec.outDir, '--out'); // before any training: a bad --out is named at once
  const rows: SweepRow[] = [];
  for (const [i, cell] of cells.entries()) {
    const existing = findFinishedRun(spec.base.runsDb, cell.cfg);
    hooks.onCell?.(i, cells.length, cell.cfg, existing !== undefined);
    const runId = existing ?? (await train(cell.cfg, hooks)).runId;
    const db = new RunsDb(spec.base.runsDb);
    const recalls = Object.fromEntries(db.finalRecalls(runId).map((r) => [r.k, r.recall]));
    db.close();
    rows.push({
      method: cell.cfg.method,
      w: cell.w,
      t: cell.t,
      runId,
      reused: existing !== undefined,
      recalls,
    });
  }
  const best = bestRow(rows);
  const title = `${spec.base.dataset}: ${spec.method} sweep, fine-label Recall@K (%) on the test split`;
  const markdown = formatSweepMarkdown(rows, best, title);
  const html = formatSweepHtml(rows, best, title);
  const files = { markdown: join(spec.outDir, 'sweep.md'), html: join(spec.outDir, 'sweep.html') };
  writeFileSync(files.markdown, markdown + '\n');
  writeFileSync(files.html, html);
  return { rows, best, markdown, html, files };
}

/** Id of the latest finished run whose configuration matches cfg's result-relevant keys. */
export function findFinishedRun(runsDb: string, cfg: TrainConfig): number | undefined {
  const db = new RunsDb(runsDb);
  try {
    const want = configKey({ ...cfg, workers: resolveWorkers(cfg, availableParallelism()) });
    const matches = db
      .listRuns()
      .filter((r) => r.status === 'finished' && configKey(JSON.parse(r.config) as object) === want);
    return matches.length > 0 ? matches[matches.length - 1].id : undefined;
  } finally {
    db.close();
  }
}

/** The best grid cell (baselines such as the SupFINE upper bound are shown, not ranked). */
function bestRow(rows: SweepRow[]): number {
  const grid = rows.filter((r) => r.w !== null || r.t !== null).length;
  const n = grid > 0 ? grid : rows.length; // grid cells come first
  let best = 0;
  for (let i = 1; i < n; i++) {
    for (const k of SWEEP_KS) {
      const a = rows[i].recalls[k] ?? -1;
      const b = rows[best].recalls[k] ?? -1;
      if (a > b) best = i;
      if (a !== b) break;
    }
  }
  return best;
}

const label = (m: string): string => (m in METHODS ? methodOf(m).label : m);
const pct = (v: number | undefined): string => (v === undefined ? '-' : (100 * v).toFixed(2));
const num = (v: number | null): string => (v === null ? '—' : String(v));

/** Markdown table in the layout of the seed's Tables 4–8; the best cell's row is bold. */
export function formatSweepMarkdown(rows: SweepRow[], best: number, title: string): string {
  const lines = [
    `**${title}**`,
    '',
    '| method | w | τ | R@1 | R@2 | R@5 | R@10 | run |',
    '| :--- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  rows.forEach((r, i) => {
    const cells = [label(r.method), num(r.w), num(r.t), ...SWEEP_KS.map((k) => pct(r.recalls[k]))];
    const shown = i === best ? cells.map((c) => `**${c}**`) : cells;
    lines.push(`| ${shown.join(' | ')} | ${r.runId} |`);
  });
  lines.push(
    '',
    `Best cell of the w × τ grid in bold (highest R@1, ties broken by R@2, R@5, R@10); baselines are for reference.`,
  );
  return lines.join('\n');
}

const escapeHtml = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Self-contained HTML page with the same table; the best row is highlighted and bold. */
export function formatSweepHtml(rows: SweepRow[], best: number, title: string): string {
  const body = rows
    .map((r, i) => {
      const cells = [
        label(r.method),
        num(r.w),
        num(r.t),
        ...SWEEP_KS.map((k) => pct(r.recalls[k])),
        String(r.runId),
      ];
      const cls = [i === best ? 'best' : '', r.w === null ? 'baseline' : '']
        .filter(Boolean)
        .join(' ');
      return `<tr${cls ? ` class="${cls}"` : ''}>${cells.map((c, j) => `<td${j === 0 ? '' : ' class="num"'}>${escapeHtml(c)}</td>`).join('')}</tr>`;
    })
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}th,td{padding:.35em .8em;border-bottom:1px solid #ddd}
th{border-bottom:2px solid #444;text-align:right}th:first-child{text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.baseline td{color:#555;border-top:1px solid #999}
tr.best td{background:#fff3b0;font-weight:bold}
</style></head><body>
<h1>${escapeHtml(title)}</h1>
<table>
<thead><tr><th>method</th><th>w</th><th>τ</th><th>R@1</th><th>R@2</th><th>R@5</th><th>R@10</th><th>run</th></tr></thead>
<tbody>
${body}
</tbody></table>
<p>Highlighted: the best cell (highest R@1, ties broken by R@2, R@5, R@10).</p>
</body></html>
`;
}
