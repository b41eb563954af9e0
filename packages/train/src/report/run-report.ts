import { cpus, totalmem, type as osType, release, arch as osArch } from 'node:os';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import sharp from 'sharp';
import * as vega from 'vega';
import * as vl from 'vega-lite';
import { TSNE } from '@saehrimnir/druidjs';
import { openIndex, defaultIndexPath, type ImageU8 } from '@maskcon/datasets';
import { Rng } from '@maskcon/random';
import { nearestNeighbours } from '@maskcon/eval';
import {
  loadTestEmbeddings,
  makeOutputFolder,
  reportFiles,
  runFolder,
  type TestEmbeddings,
} from '../run-folder.js';
import { RunsDb } from '../runs-db.js';

export interface ReportOptions {
  runsDb: string;
  runId: number;
  /** Output folder (default: `<run dir>/report`). */
  outDir?: string;
  /** Most test embeddings in the t-SNE (seeded subsample; default 2000). Exact t-SNE is O(n²). */
  tsnePoints?: number;
  tsneIterations?: number;
  /** Queries in the retrieval grid (default 8) and neighbours per query (default 10). */
  queries?: number;
  neighbours?: number;
  seed?: number;
  log?: (msg: string) => void;
}

export interface ReportResult {
  html: string;
  files: { html: string; tsneCoarse?: string; tsneFine?: string; retrieval?: string };
}

async function vegaLiteSvg(spec: vl.TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

/** 2-d t-SNE of a seeded subsample of the embeddings (rows L2-normalised first, as for retrieval). */
export function tsneLayout(
  e: TestEmbeddings,
  maxPoints: number,
  iterations: number,
  seed: number,
): { rows: number[]; xy: Float64Array[] } {
  const rows =
    e.n <= maxPoints
      ? Array.from({ length: e.n }, (_, i) => i)
      : Array.from(new Rng(seed).permutation(e.n).subarray(0, maxPoints)).sort((a, b) => a - b);
  const X = rows.map((r) => {
    const v = Float64Array.from(e.features.subarray(r * e.dim, (r + 1) * e.dim));
    const norm = Math.hypot(...v) || 1;
    for (let c = 0; c < v.length; c++) v[c] /= norm;
    return v;
  });
  const perplexity = Math.max(2, Math.min(30, Math.floor((rows.length - 1) / 3)));
  const xy = new TSNE(X, { perplexity, epsilon: 10, d: 2, seed }).transform(
    iterations,
  ) as Float64Array[];
  return { rows, xy };
}

function scatterSpec(
  points: { x: number; y: number; label: string }[],
  title: string,
  legendTitle: string,
): vl.TopLevelSpec {
  const many = new Set(points.map((p) => p.label)).size > 20;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width: 420,
    height: 420,
    background: 'white',
    data: { values: points },
    mark: { type: 'circle', size: 14, opacity: 0.75 },
    encoding: {
      x: { field: 'x', type: 'quantitative', axis: null },
      y: { field: 'y', type: 'quantitative', axis: null },
      color: {
        field: 'label',
        type: 'nominal',
        title: legendTitle,
        scale: { scheme: many ? 'tableau20' : 'category10' },
        legend: many ? null : {},
      },
    },
  } as vl.TopLevelSpec;
}

function lineSpec(
  values: object[],
  field: string,
  title: string,
  yTitle: string,
  series?: string,
  logScale = false,
): vl.TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width: 360,
    height: 220,
    background: 'white',
    data: { values },
    mark: { type: 'line', point: true },
    encoding: {
      x: {
        field: 'epoch',
        type: 'quantitative',
        title: 'epoch',
        axis: { tickMinStep: 1, format: 'd' },
      },
      y: {
        field,
        type: 'quantitative',
        title: yTitle,
        scale: logScale ? { type: 'symlog' } : { zero: false },
      },
      ...(series ? { color: { field: series, type: 'nominal', title: null, sort: null } } : {}),
    },
  } as vl.TopLevelSpec;
}

const BORDER = { correct: [46, 160, 67], wrong: [214, 39, 40], query: [60, 60, 60] } as const;

/**
 * Retrieval grid as a PNG: one row per query — the query (grey frame), a gap, then its top-k
 * neighbours by cosine similarity framed green when their fine label matches, red otherwise.
 */
export async function retrievalGridPng(
  images: (i: number) => ImageU8,
  rows: { query: number; neighbours: number[]; correct: boolean[] }[],
): Promise<Buffer> {
  const sample = images(rows[0].query);
  const scale = Math.max(1, Math.ceil(64 / Math.max(sample.width, sample.height)));
  const tw = sample.width * scale;
  const th = sample.height * scale;
  const border = 4;
  const pad = 4;
  const cell = { w: tw + 2 * border + pad, h: th + 2 * border + pad };
  const gap = 16;
  const cols = 1 + Math.max(...rows.map((r) => r.neighbours.length));
  const width = pad + cols * cell.w + gap;
  const height = pad + rows.length * cell.h;
  const out = new Uint8Array(width * height * 3).fill(255); // height×width×RGB
  const put = (x0: number, y0: number, img: ImageU8, colour: readonly number[]) => {
    for (let y = 0; y < th + 2 * border; y++) {
      for (let x = 0; x < tw + 2 * border; x++) {
        const o = ((y0 + y) * width + (x0 + x)) * 3;
        const inside = x >= border && y >= border && x < tw + border && y < th + border;
        if (!inside) {
          out[o] = colour[0];
          out[o + 1] = colour[1];
          out[o + 2] = colour[2];
          continue;
        }
        const sx = Math.floor((x - border) / scale);
        const sy = Math.floor((y - border) / scale);
        const p = (sy * img.width + sx) * img.channels;
        out[o] = img.data[p];
        out[o + 1] = img.data[p + (img.channels === 3 ? 1 : 0)];
        out[o + 2] = img.data[p + (img.channels === 3 ? 2 : 0)];
      }
    }
  };
  rows.forEach((r, ri) => {
    const y0 = pad + ri * cell.h;
    put(pad, y0, images(r.query), BORDER.query);
    r.neighbours.forEach((j, c) =>
      put(
        pad + (c + 1) * cell.w + gap,
        y0,
        images(j),
        r.correct[c] ? BORDER.correct : BORDER.wrong,
      ),
    );
  });
  return sharp(Buffer.from(out), { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
}

const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const dataUri = (png: Buffer): string => `data:image/png;base64,${png.toString('base64')}`;

/** Writes a self-contained HTML report (inline CSS, inline SVG, PNGs as data URIs) for one run. */
export async function writeRunReport(opts: ReportOptions): Promise<ReportResult> {
  const log = opts.log ?? ((m: string) => process.stderr.write(m + '\n'));
  const db = RunsDb.openReadonly(opts.runsDb);
  let run: ReturnType<RunsDb['getRun']>;
  let epochs: ReturnType<RunsDb['epochs']>;
  let recalls: ReturnType<RunsDb['recalls']>;
  try {
    run = db.getRun(opts.runId);
    if (!run) {
      const ids = db.listRuns().map((r) => r.id);
      throw new Error(
        `Run ${opts.runId} is not in ${opts.runsDb}; it holds runs ${ids.length ? ids.join(', ') : '(none)'}. See pnpm runs.`,
      );
    }
    epochs = db.epochs(opts.runId);
    recalls = db.recalls(opts.runId);
  } finally {
    db.close();
  }
  const config = JSON.parse(run.config) as Record<string, unknown>;
  const folder = runFolder(opts.runsDb, opts.runId);
  const outDir = opts.outDir ?? folder.report;
  const paths = reportFiles(outDir);
  makeOutputFolder(outDir, '--out');
  const seed = opts.seed ?? 0;
  const files: ReportResult['files'] = { html: paths.html };

  const lossSvg = await vegaLiteSvg(lineSpec(epochs, 'loss', 'Training loss per epoch', 'loss'));
  const lrSvg = await vegaLiteSvg(
    lineSpec(epochs, 'lr', 'Learning rate at the end of each epoch', 'learning rate'),
  );
  const recallValues = recalls.map((r) => ({
    epoch: r.epoch,
    K: `R@${r.k}`,
    recall: 100 * r.recall,
  }));
  const recallSvg = await vegaLiteSvg(
    lineSpec(recallValues, 'recall', 'Fine-label Recall@K over epochs', 'Recall@K (%)', 'K'),
  );
  const lastEpoch = recalls.length ? Math.max(...recalls.map((r) => r.epoch)) : undefined;
  const finalRecalls = recalls.filter((r) => r.epoch === lastEpoch);

  let tsneHtml =
    '<p class="missing">No test embeddings were saved for this run (it did not finish), so there is no t-SNE or retrieval grid.</p>';
  let retrievalHtml = '';
  const emb = loadTestEmbeddings(folder.dir);
  if (emb) {
    const indexPath = (config.index as string | undefined) ?? defaultIndexPath(run.dataset);
    if (!existsSync(indexPath))
      throw new Error(
        `Dataset index ${indexPath} (run ${opts.runId}'s test images) does not exist; build it with pnpm datasets:build ${run.dataset}.`,
      );
    const test = openIndex(indexPath, 'test');
    try {
      const t0 = performance.now();
      const { rows, xy } = tsneLayout(
        emb,
        opts.tsnePoints ?? 2000,
        opts.tsneIterations ?? 300,
        seed,
      );
      log(
        `report: t-SNE of ${rows.length} test embeddings in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );
      const pts = (names: readonly string[], labels: number[]) =>
        rows.map((r, i) => ({
          x: xy[i][0],
          y: xy[i][1],
          label: names[labels[r]] ?? String(labels[r]),
        }));
      const coarseSvg = await vegaLiteSvg(
        scatterSpec(
          pts(test.coarseClassNames, emb.coarseLabels),
          `t-SNE of ${rows.length} test embeddings, coloured by coarse label`,
          'coarse',
        ),
      );
      const fineSvg = await vegaLiteSvg(
        scatterSpec(
          pts(test.fineClassNames, emb.fineLabels),
          `t-SNE of ${rows.length} test embeddings, coloured by fine label`,
          'fine',
        ),
      );
      files.tsneCoarse = paths.tsneCoarse;
      files.tsneFine = paths.tsneFine;
      await sharp(Buffer.from(coarseSvg), { density: 144 })
        .flatten({ background: '#ffffff' })
        .png()
        .toFile(files.tsneCoarse);
      await sharp(Buffer.from(fineSvg), { density: 144 })
        .flatten({ background: '#ffffff' })
        .png()
        .toFile(files.tsneFine);
      tsneHtml = `<div class="row"><figure class="plot" id="tsne-coarse">${coarseSvg}</figure><figure class="plot" id="tsne-fine">${fineSvg}</figure></div>`;

      const numQueries = Math.min(opts.queries ?? 8, emb.n);
      const queries = Array.from(new Rng(seed + 1).permutation(emb.n).subarray(0, numQueries));
      const nn = nearestNeighbours(emb.features, emb.dim, queries, opts.neighbours ?? 10);
      const gridRows = queries.map((q, qi) => {
        const neighbours = Array.from(nn.indices.subarray(qi * nn.k, (qi + 1) * nn.k));
        return {
          query: q,
          neighbours,
          correct: neighbours.map((j) => emb.fineLabels[j] === emb.fineLabels[q]),
        };
      });
      const png = await retrievalGridPng((row) => test.image(emb.indices[row]), gridRows);
      files.retrieval = paths.retrieval;
      writeFileSync(files.retrieval, png);
      const hits = gridRows.reduce((s, r) => s + r.correct.filter(Boolean).length, 0);
      const caption = gridRows
        .map(
          (r) =>
            `<li>query test image ${emb.indices[r.query]} (${esc(test.fineClassNames[emb.fineLabels[r.query]] ?? '')}): ${r.correct.filter(Boolean).length}/${r.neighbours.length} correct</li>`,
        )
        .join('');
      retrievalHtml = `<figure><img id="retrieval" alt="retrieval grid" src="${dataUri(png)}"><figcaption>${numQueries} seeded queries (left, grey frame) and their top-${nn.k} neighbours by cosine similarity of the saved backbone features; green frame = same fine label, red = different. ${hits} of ${numQueries * nn.k} retrieved images are correct.</figcaption></figure><ul class="small">${caption}</ul>`;
      tsneHtml += `<p class="small">PNG copies: <img class="thumb" alt="t-SNE coarse" src="${dataUri(readFileSync(files.tsneCoarse))}"> <img class="thumb" alt="t-SNE fine" src="${dataUri(readFileSync(files.tsneFine))}"></p>`;
    } finally {
      test.close();
    }
  }

  const cpu = cpus();
  const hardware: [string, string][] = [
    ['CPU', `${cpu[0]?.model ?? 'unknown'} × ${cpu.length}`],
    ['memory', `${(totalmem() / 2 ** 30).toFixed(1)} GiB`],
    ['OS', `${osType()} ${release()} (${osArch()})`],
    ['Node.js', process.version],
  ];
  const runInfo: [string, string][] = [
    ['run', String(run.id)],
    ['status', run.status],
    ['dataset', run.dataset],
    ['method', run.method],
    ['backend', run.backend ?? '-'],
    ['git revision', run.git_rev ?? '-'],
    ['started', run.started_at],
    ['finished', run.finished_at ?? '-'],
    ['wall time', run.wall_time_s != null ? `${run.wall_time_s.toFixed(1)} s` : '-'],
    [
      'training throughput',
      run.images_per_s != null ? `${run.images_per_s.toFixed(1)} images/s` : '-',
    ],
  ];
  const kv = (rows: [string, string][]) =>
    `<table class="kv">${rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('')}</table>`;
  const finalTable = finalRecalls.length
    ? `<table class="recall"><thead><tr>${finalRecalls.map((r) => `<th>R@${r.k}</th>`).join('')}</tr></thead><tbody><tr>${finalRecalls.map((r) => `<td>${(100 * r.recall).toFixed(2)}</td>`).join('')}</tr></tbody></table><p class="small">Fine-label Recall@K (%) on the test split after epoch ${lastEpoch}.</p>`
    : '<p class="missing">No Recall@K was recorded for this run.</p>';
  const title = `Run ${run.id}: ${run.method} on ${run.dataset}`;
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{margin-bottom:.2em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse}th,td{padding:.25em .7em;border-bottom:1px solid #e3e3e3;text-align:left}
table.recall td,table.recall th{text-align:right;font-variant-numeric:tabular-nums;font-size:1.1em}
.row{display:flex;flex-wrap:wrap;gap:1.5em}.plot{margin:0}.cols{display:flex;gap:3em;flex-wrap:wrap}
.small{font-size:.85em;color:#555}.missing{color:#a33}img.thumb{height:120px;border:1px solid #ddd}
#retrieval{image-rendering:pixelated;max-width:100%}
</style></head><body>
<h1>${esc(title)}</h1>
<p class="small">Generated ${esc(new Date().toISOString())} from ${esc(opts.runsDb)}. Self-contained: no network needed.</p>
<div class="cols"><section><h2>Run</h2>${kv(runInfo)}</section><section><h2>Hardware</h2>${kv(hardware)}<p class="small">The machine that generated this report (the runs database does not record where a run trained).</p></section></div>
<h2>Configuration</h2>${kv(Object.entries(config).map(([k, v]) => [k, JSON.stringify(v)]))}
<h2>Final Recall@K</h2>${finalTable}
<h2>Training curves</h2><div class="row"><figure class="plot" id="loss">${lossSvg}</figure><figure class="plot" id="lr">${lrSvg}</figure><figure class="plot" id="recall">${recallSvg}</figure></div>
<h2>t-SNE of test embeddings</h2>${tsneHtml}
<h2>Retrieval examples</h2>${retrievalHtml}
</body></html>
`;
  writeFileSync(files.html, html);
  return { html, files };
}
