import { beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { openIndex } from '@maskcon/datasets';
import { nearestNeighbours } from '@maskcon/eval';
import { EmbeddingStore, loadGallery, searchGallery } from '@maskcon/search';
import { parseTrainArgs, train } from '@maskcon/train';
import { buildTinyFashionIndex } from './fixtures.js';

/**
 * End to end: train tiny → `pnpm embed` the test split → `pnpm run search` by id and by image
 * file → the same top-10 (ids and order) as the run's own Recall@K computation, i.e. the
 * retrieval lists of @maskcon/eval over the run's saved test embeddings.
 */

const repo = resolve(import.meta.dirname, '..');
const work = mkdtempSync(join(tmpdir(), 'maskcon-search-e2e-'));
const runsDb = join(work, 'runs.sqlite');
let index = '';

function cli(args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'packages/search/src/cli.ts', ...args], {
    cwd: repo,
    encoding: 'utf8',
    timeout: 300_000,
  });
}

interface JsonHit {
  rank: number;
  id: number;
  score: number;
  coarse: string | null;
  fine: string | null;
  source: string;
}

beforeAll(async () => {
  index = await buildTinyFashionIndex(work, 40, 12);
  await train(
    parseTrainArgs([
      '--preset',
      'tiny',
      '--index',
      index,
      '--K',
      '128',
      '--epochs',
      '2',
      '--train-subset',
      '0',
      '--test-subset',
      '0',
      '--runs-db',
      runsDb,
      '--seed',
      '3',
      '--backend',
      'wasm',
    ]),
    { log: () => {} },
  );
}, 600_000);

describe('embed → search reproduces the run’s own retrieval lists', () => {
  it('embeds the test split, incrementally, and finds the run’s top-10 by id and by image', async () => {
    const store = join(work, 'store.sqlite');
    // The TF.js engine on the training backend: the same numbers the run evaluated with.
    const embed = (engine: string, out: string) =>
      cli([
        'embed',
        '1',
        '--runs-db',
        runsDb,
        '--out',
        out,
        '--engine',
        engine,
        '--backend',
        'wasm',
      ]);
    const first = embed('tfjs', store);
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/120 items \(120 added, 0 changed, 0 unchanged, 0 removed\)/);
    expect(first.stderr).toMatch(/img\/s ETA/);
    const again = embed('tfjs', store);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/120 items \(0 added, 0 changed, 120 unchanged, 0 removed\)/);

    // The run's own lists: test-embeddings.f32 (what Recall@K was computed from).
    const meta = JSON.parse(readFileSync(join(work, '1', 'test-embeddings.json'), 'utf8')) as {
      n: number;
      dim: number;
    };
    const saved = new Float32Array(
      readFileSync(join(work, '1', 'test-embeddings.f32')).buffer.slice(0),
    );
    expect(saved.length).toBe(meta.n * meta.dim);
    const s = EmbeddingStore.open(store, { readonly: true });
    const idOfRow = new Map<number, number>();
    const rowOfId = new Map<number, number>();
    for (const it of s.items(0, 1000)) {
      expect(it.kind).toBe('index');
      idOfRow.set(it.row!, it.id);
      rowOfId.set(it.id, it.row!);
    }
    const model = s.model()!;
    expect(model.runId).toBe(1);
    expect(model.dim).toBe(meta.dim);
    expect(model.weightsHash).toMatch(/^[0-9a-f]{64}$/);
    const test = openIndex(index, 'test');
    const first5 = s.items(0, 5);
    expect(first5.map((i) => i.fineName)).toEqual(
      [0, 1, 2, 3, 4].map((r) => test.fineClassNames[test.fineLabels()[r]]),
    );
    s.close();

    // One query through the command line, the rest through the same API it calls.
    const viaCli = cli(['search', store, '--id', String(idOfRow.get(7)), '--k', '10', '--json']);
    expect(viaCli.status, viaCli.stderr).toBe(0);
    const cliHits = JSON.parse(viaCli.stdout) as JsonHit[];
    expect(cliHits.map((h) => rowOfId.get(h.id))).toEqual(
      Array.from(nearestNeighbours(saved, meta.dim, [7], 10).indices),
    );
    const reader = EmbeddingStore.open(store, { readonly: true });
    const gallery = loadGallery(reader);
    for (let row = 0; row < meta.n; row++) {
      const want = nearestNeighbours(saved, meta.dim, [row], 10);
      const hits = await searchGallery(reader, gallery, { id: idOfRow.get(row), k: 10 });
      expect(hits.map((h) => rowOfId.get(h.id))).toEqual(Array.from(want.indices));
      for (let j = 0; j < 10; j++) expect(hits[j].score).toBeCloseTo(want.similarities[j], 3);
    }
    reader.close();

    // By image file: the test image written as a PNG finds itself first, then the same ten.
    const row = 42;
    const img = test.image(row);
    const png = join(work, 'query.png');
    await sharp(Buffer.from(img.data), {
      raw: { width: img.width, height: img.height, channels: 1 },
    })
      .png()
      .toFile(png);
    test.close();
    const byImage = cli([
      'search',
      store,
      '--image',
      png,
      '--k',
      '11',
      '--json',
      '--engine',
      'tfjs',
    ]);
    expect(byImage.status, byImage.stderr).toBe(0);
    const hits = JSON.parse(byImage.stdout) as JsonHit[];
    expect(rowOfId.get(hits[0].id)).toBe(row);
    expect(hits[0].score).toBeGreaterThan(0.9999);
    expect(hits.slice(1).map((h) => rowOfId.get(h.id))).toEqual(
      Array.from(nearestNeighbours(saved, meta.dim, [row], 10).indices),
    );

    // --coarse keeps one coarse class; a label that does not exist is named.
    const coarse = hits[0].coarse!;
    const filtered = cli([
      'search',
      store,
      '--id',
      String(hits[0].id),
      '--coarse',
      coarse,
      '--k',
      '50',
      '--json',
    ]);
    expect(filtered.status, filtered.stderr).toBe(0);
    const fh = JSON.parse(filtered.stdout) as JsonHit[];
    expect(fh.length).toBeGreaterThan(10);
    for (const h of fh) expect(h.coarse).toBe(coarse);
    const bad = cli(['search', store, '--id', '1', '--coarse', 'hats']);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/No item with coarse label "hats"; labels: /);
    const noImage = cli(['search', store, '--image', join(work, 'runs.sqlite')]);
    expect(noImage.status).toBe(1);
    expect(noImage.stderr).toMatch(
      /runs\.sqlite is not an image; JPEG, PNG and WebP are supported/,
    );
  });
});
