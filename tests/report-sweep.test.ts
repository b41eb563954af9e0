import { describe, expect, it, beforeAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import sharp from 'sharp';
import { parseTrainArgs, train } from '@maskcon/train';
import { parseSweepArgs, runSweep } from '../packages/train/src/sweep.js';
import { buildTinyFashionIndex } from './fixtures.js';

const repo = resolve(import.meta.dirname, '..');
const work = mkdtempSync(join(tmpdir(), 'maskcon-report-'));
const CHROMIUM = '/usr/bin/chromium';
/** Screenshots and report copies land here (kept after the test for people to look at). */
const artefacts = process.env.MASKCON_TEST_ARTEFACTS ?? join(work, 'artefacts');
let index = '';

beforeAll(async () => {
  index = await buildTinyFashionIndex(work, 40, 12);
});

const rows = (db: string, sql: string) => {
  const d = new Database(db, { readonly: true });
  const out = d.prepare(sql).all() as Record<string, unknown>[];
  d.close();
  return out;
};

describe('pnpm report: a self-contained HTML page of one run, checked in headless Chromium', () => {
  it('renders curves, t-SNE and a retrieval grid from a trained run', async () => {
    const runsDb = join(work, 'report-runs.sqlite');
    const result = await train(
      parseTrainArgs([
        '--preset',
        'tiny',
        '--index',
        index,
        '--K',
        '64',
        '--epochs',
        '2',
        '--eval-every',
        '1',
        '--train-subset',
        '192',
        '--test-subset',
        '0',
        '--runs-db',
        runsDb,
        '--backend',
        'wasm',
      ]),
      { log: () => {} },
    );
    const out = join(artefacts, 'report');
    const cli = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        'packages/train/src/report/cli.ts',
        String(result.runId),
        '--runs-db',
        runsDb,
        '--out',
        out,
        '--tsne-points',
        '100',
        '--queries',
        '5',
      ],
      { cwd: repo, encoding: 'utf8', timeout: 120_000 },
    );
    expect(cli.status, cli.stderr).toBe(0);
    for (const f of ['report.html', 'tsne-coarse.png', 'tsne-fine.png', 'retrieval.png'])
      expect(existsSync(join(out, f)), f).toBe(true);

    const html = readFileSync(join(out, 'report.html'), 'utf8');
    // Self-contained: nothing is fetched from anywhere.
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    expect(html).not.toMatch(/<script/);
    // The final table shows the stored Recall@K of the last epoch.
    const stored = rows(
      runsDb,
      `SELECT k, recall FROM recalls WHERE run_id = ${result.runId} AND epoch = 2 ORDER BY k`,
    ) as { k: number; recall: number }[];
    expect(stored.map((r) => r.k)).toEqual([1, 2, 5, 10]);
    for (const r of stored) expect(html).toContain(`<td>${(100 * r.recall).toFixed(2)}</td>`);
    expect(html).toContain(`wasm`);

    // Retrieval grid: 5 rows × (query + 10 neighbours), 64-px tiles (28 px × 3) with 4-px frames.
    const grid = await sharp(join(out, 'retrieval.png')).metadata();
    expect(grid.width).toBe(4 + 11 * (84 + 8 + 4) + 16);
    expect(grid.height).toBe(4 + 5 * (84 + 8 + 4));
    const tsne = await sharp(join(out, 'tsne-fine.png')).metadata();
    expect(tsne.width).toBeGreaterThan(400);

    if (!existsSync(CHROMIUM)) {
      console.warn(
        `SKIPPED the browser check: ${CHROMIUM} is missing (apt-get install chromium; scripts/install.sh --with-test-deps and .ci/run do this).`,
      );
      return;
    }
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
      const requests: string[] = [];
      page.on('request', (r) => {
        if (!r.url().startsWith('file:') && !r.url().startsWith('data:')) requests.push(r.url());
      });
      await page.goto('file://' + join(out, 'report.html'));
      const seen = await page.evaluate(() => {
        const count = (sel: string) => document.querySelectorAll(sel).length;
        const imgs = [...document.querySelectorAll('img')] as HTMLImageElement[];
        return {
          coarsePoints: count('#tsne-coarse svg .mark-symbol.role-mark path'),
          finePoints: count('#tsne-fine svg .mark-symbol.role-mark path'),
          lossLines: count('#loss svg .mark-line path'),
          lossPoints: count('#loss svg .mark-symbol.role-mark path'),
          recallLines: count('#recall svg .mark-line path'),
          images: imgs.map((i) => ({ alt: i.alt, w: i.naturalWidth, complete: i.complete })),
        };
      });
      expect(seen.coarsePoints).toBe(100);
      expect(seen.finePoints).toBe(100);
      expect(seen.lossLines).toBe(1);
      expect(seen.lossPoints).toBe(2); // two epochs
      expect(seen.recallLines).toBe(4); // R@1, R@2, R@5, R@10
      expect(seen.images.map((i) => i.alt).sort()).toEqual([
        'retrieval grid',
        't-SNE coarse',
        't-SNE fine',
      ]);
      for (const img of seen.images) expect(img.w, img.alt).toBeGreaterThan(0);
      expect(requests).toEqual([]);
      await page.screenshot({ path: join(artefacts, 'report-screenshot.png'), fullPage: true });
      const shot = await sharp(join(artefacts, 'report-screenshot.png')).metadata();
      expect(shot.width).toBe(1200);
    } finally {
      await browser.close();
    }
  });
});

describe('pnpm sweep: a resumable w × τ grid with baselines, as Tables 4–8', () => {
  it('trains each cell once, writes Markdown and HTML with the best cell marked, and re-uses finished cells', async () => {
    const runsDb = join(work, 'sweep-runs.sqlite');
    const outDir = join(artefacts, 'sweep');
    const args = [
      '--dataset',
      'fashion_mnist',
      '--index',
      index,
      '--preset',
      'tiny',
      '--K',
      '64',
      '--train-subset',
      '192',
      '--test-subset',
      '0',
      '--backend',
      'wasm',
      '--method',
      'maskcon',
      '--w',
      '0.5,1',
      '--t',
      '0.1',
      '--baselines',
      'selfcon',
      '--runs-db',
      runsDb,
      '--out',
      outDir,
    ];
    const first = await runSweep(parseSweepArgs(args), { log: () => {} });
    expect(first.rows.map((r) => [r.method, r.w, r.t, r.reused])).toEqual([
      ['maskcon', 0.5, 0.1, false],
      ['maskcon', 1, 0.1, false],
      ['selfcon', null, null, false],
    ]);
    const runs = rows(runsDb, 'SELECT id, method, status, config FROM runs ORDER BY id') as {
      id: number;
      method: string;
      status: string;
      config: string;
    }[];
    expect(runs.map((r) => [r.method, r.status])).toEqual([
      ['maskcon', 'finished'],
      ['maskcon', 'finished'],
      ['selfcon', 'finished'],
    ]);
    expect(runs.map((r) => (JSON.parse(r.config) as { w: number }).w)).toEqual([0.5, 1, 1]);

    // Table values are the runs DB's final Recall@K, in percent with 2 decimals.
    const md = readFileSync(join(outDir, 'sweep.md'), 'utf8');
    const r1 = rows(runsDb, 'SELECT run_id, recall FROM recalls WHERE k = 1 ORDER BY run_id') as {
      run_id: number;
      recall: number;
    }[];
    expect(r1).toHaveLength(3);
    const best = first.best;
    // The best cell is the best of the w × τ grid (runs 1–2); the SelfCon baseline is not ranked.
    const bestR1 = Math.max(...r1.slice(0, 2).map((r) => r.recall));
    expect(first.rows[best].recalls[1]).toBe(bestR1);
    const lines = md
      .split('\n')
      .filter((l) => l.startsWith('| ') && !l.startsWith('| method') && !l.startsWith('| :'));
    expect(lines).toHaveLength(3);
    expect(lines[2].replace(/\*\*/g, '')).toMatch(/^\| SelfCon \| — \| — \| /);
    lines.forEach((l, i) => {
      expect(l).toContain(
        `| ${i === best ? '**' : ''}${(100 * first.rows[i].recalls[1]).toFixed(2)}${i === best ? '**' : ''} |`,
      );
      expect(l.startsWith(i === best ? '| **' : '| ') && (i === best) === l.includes('**')).toBe(
        true,
      );
    });
    const html = readFileSync(join(outDir, 'sweep.html'), 'utf8');
    expect(html.match(/<tr class="best[^"]*">/g)).toHaveLength(1);

    // Run again: every cell is found finished in the runs DB, nothing is trained.
    const second = await runSweep(parseSweepArgs(args), { log: () => {} });
    expect(second.rows.map((r) => r.reused)).toEqual([true, true, true]);
    expect(second.rows.map((r) => r.runId)).toEqual(first.rows.map((r) => r.runId));
    expect(rows(runsDb, 'SELECT COUNT(*) AS n FROM runs')[0].n).toBe(3);
    expect(second.markdown).toBe(first.markdown);
  });
});
