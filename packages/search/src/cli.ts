#!/usr/bin/env node
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  cpSync,
  renameSync,
} from 'node:fs';
import { fileURLToPath } from 'node:url';
import { basename, dirname, join, resolve } from 'node:path';
import { defaultIndexPath, type Split } from '@maskcon/datasets';
import { layersModelToOnnx, loadBackbone, writeOnnxModel, type BackendName } from '@maskcon/model';
import { DEFAULT_CONFIG, ProgressBar } from '@maskcon/train';
import { csvCatalogue, imagesCatalogue, indexCatalogue, type Catalogue } from './catalogue.js';
import { embedCatalogue } from './embed.js';
import {
  ENGINE_NAMES,
  modelIdentity,
  openEngine,
  resolveModel,
  type EngineChoice,
} from './model.js';
import { embedImage, openStoreEngine } from './query.js';
import { loadGallery, searchGallery, type SearchHit } from './search.js';
import { writeSearchHtml } from './html.js';
import { EmbeddingStore } from './store.js';
import { AnnIndex } from './ann.js';
import { searchApp, startServer } from './serve.js';

/** `pnpm embed | run search | serve | export`: one program, one subcommand each. */

const positiveInt = (flag: string) => (raw: string) => {
  const v = /^\d+$/.test(raw.trim()) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(v) || v < 1)
    throw new InvalidArgumentError(`${flag} takes a positive integer, got ${JSON.stringify(raw)}.`);
  return v;
};

const engineOption = () =>
  new Option(
    '--engine <name>',
    'onnx (ONNX Runtime), tfjs, or auto: onnx when onnxruntime-node loads',
  )
    .choices(ENGINE_NAMES as unknown as string[])
    .default('auto');

function printHits(hits: SearchHit[]): void {
  const rows = hits.map((h) => [
    String(h.rank),
    String(h.id),
    h.score.toFixed(4),
    h.item.coarseName ?? '-',
    h.item.fineName ?? '-',
    h.item.kind === 'index'
      ? `${basename(h.item.path)}#${h.item.split}/${h.item.row}`
      : h.item.path,
  ]);
  const head = ['rank', 'id', 'cosine', 'coarse', 'fine', 'source'];
  const w = head.map((t, c) => Math.max(t.length, ...rows.map((r) => r[c].length)));
  const line = (r: string[]) => r.map((v, c) => (c === 5 ? v : v.padStart(w[c]))).join('  ');
  console.log(line(head));
  for (const r of rows) console.log(line(r));
}

export function buildProgram(): Command {
  const program = new Command('maskcon-search')
    .description('Embed a catalogue, search it, serve it, export the model.')
    .showHelpAfterError()
    .exitOverride();

  program
    .command('embed')
    .description(
      'Embed images into an embedding store (SQLite). Incremental: re-running embeds only new or changed items; a killed run resumes.',
    )
    .argument('<model>', 'a run id (`pnpm runs`) or an exported model folder')
    .option('--index <file>', 'a dataset index (`pnpm datasets:build`); default: the run’s index')
    .option('--dataset <name>', 'a dataset name, for its default index path')
    .addOption(
      new Option('--split <split>', 'index split').choices(['test', 'train']).default('test'),
    )
    .option('--images <dir>', 'a folder of JPEG/PNG/WebP files (recursive)')
    .option('--csv <file>', 'a CSV/TSV with an image path column and optional coarse/fine columns')
    .option('--root <dir>', '--csv: folder the paths are relative to (default: the CSV’s folder)')
    .requiredOption('--out <file>', 'the embedding store to create or update')
    .option(
      '--batch-size <n>',
      'images per forward pass and per transaction',
      positiveInt('--batch-size'),
      64,
    )
    .addOption(engineOption())
    .option('--backend <name>', 'tfjs engine: backend (wasm, cpu, …)')
    .option(
      '--threads <n>',
      'onnx engine: threads (default: one per core)',
      positiveInt('--threads'),
    )
    .option('--skip-bad', 'leave out files that fail to decode (listed) instead of stopping')
    .option('--keep-missing', 'keep stored items that are no longer in the catalogue')
    .option('--replace-model', 'the store holds another model’s vectors: empty it and re-embed')
    .option('--runs-db <file>', 'runs database', DEFAULT_CONFIG.runsDb)
    .action(async (target: string, o) => {
      const m = resolveModel(target, o.runsDb);
      const given = [o.index || o.dataset, o.images, o.csv].filter(Boolean).length;
      if (given > 1) throw new Error('Give one of --index/--dataset, --images or --csv.');
      let catalogue: Catalogue;
      if (o.images) catalogue = await imagesCatalogue(o.images);
      else if (o.csv) catalogue = csvCatalogue(o.csv, o.root);
      else {
        const index =
          o.index ??
          (o.dataset
            ? defaultIndexPath(o.dataset)
            : (m.runIndex ?? (m.runDataset ? defaultIndexPath(m.runDataset) : undefined)));
        if (!index)
          throw new Error(
            'Say what to embed: --index FILE [--split], --images DIR or --csv FILE (or give a run id, whose index is the default).',
          );
        catalogue = indexCatalogue(index, o.split as Split);
      }
      const engine = await openEngine(m.modelDir, {
        engine: o.engine as EngineChoice,
        backend: o.backend as BackendName | undefined,
        threads: o.threads,
        log: (s) => process.stderr.write(`${s}\n`),
      });
      const identity = modelIdentity(m, engine.meta, engine.dim);
      mkdirSync(dirname(resolve(o.out)), { recursive: true });
      const store = EmbeddingStore.open(o.out, { create: true });
      const bar = new ProgressBar('embedding', catalogue.total);
      try {
        const r = await embedCatalogue(store, catalogue, engine, identity, {
          batchSize: o.batchSize,
          replaceModel: o.replaceModel === true,
          skipBad: o.skipBad === true,
          keepMissing: o.keepMissing === true,
          onSkip: (p, why) => process.stderr.write(`\nskipped ${p}: ${why}\n`),
          onProgress: (seen, embedded) => bar.update(seen, embedded),
        });
        bar.finish(catalogue.total, r.added + r.updated);
        console.log(
          `${o.out}: ${store.size} items (${r.added} added, ${r.updated} changed, ${r.unchanged} unchanged, ${r.removed} removed${r.skipped ? `, ${r.skipped} skipped` : ''}) in ${r.seconds.toFixed(1)} s with ${engine.name}.`,
        );
      } finally {
        store.close();
        await engine.close();
      }
    });

  program
    .command('search')
    .description(
      'Top-K most cosine-similar stored items of an image or a stored item (exact search).',
    )
    .argument('<store>', 'an embedding store written by `pnpm embed`')
    .option('--image <file>', 'query image (JPEG/PNG/WebP)')
    .option('--id <n>', 'query by a stored item id', positiveInt('--id'))
    .option('--k <n>', 'neighbours', positiveInt('--k'), 10)
    .option('--coarse <label>', 'only items with this coarse label')
    .option('--json', 'print JSON')
    .option('--html <file>', 'write an HTML page with the result tiles')
    .option(
      '--ann',
      'approximate search (usearch HNSW, saved as STORE.usearch); for galleries past ~1M',
    )
    .addOption(engineOption())
    .action(async (file: string, o) => {
      if ((o.image === undefined) === (o.id === undefined))
        throw new Error('Give exactly one of --image FILE or --id N.');
      const store = EmbeddingStore.open(file, { readonly: true });
      try {
        const g = loadGallery(store);
        let vector: Float32Array | undefined;
        if (o.image) {
          const engine = await openStoreEngine(store.model()!, file, { engine: o.engine });
          try {
            vector = await embedImage(engine, o.image);
          } finally {
            await engine.close();
          }
        }
        let ann: AnnIndex | undefined;
        if (o.ann) {
          ann = (await AnnIndex.open(file, g)) ?? undefined;
          if (!ann) {
            process.stderr.write(`building the ANN graph over ${g.ids.length} vectors…\n`);
            ann = await AnnIndex.build(g);
            try {
              ann.save(file, g);
            } catch (err) {
              process.stderr.write(
                `warning: the graph was not saved (${(err as Error).message}).\n`,
              );
            }
          }
        }
        const hits = await searchGallery(store, g, {
          id: o.id,
          vector,
          k: o.k,
          coarse: o.coarse,
          ann,
        });
        if (o.html) {
          await writeSearchHtml(o.html, store, hits, o.image ?? `item ${o.id}`);
          console.error(`wrote ${o.html}`);
        }
        if (o.json)
          console.log(
            JSON.stringify(
              hits.map((h) => ({
                rank: h.rank,
                id: h.id,
                score: h.score,
                coarse: h.item.coarseName,
                fine: h.item.fineName,
                source: h.item.source,
              })),
              null,
              1,
            ),
          );
        else if (!o.html) printHits(hits);
      } finally {
        store.close();
      }
    });

  program
    .command('serve')
    .description('A local search page and JSON API over an embedding store (127.0.0.1 by default).')
    .argument('<store>', 'an embedding store written by `pnpm embed`')
    .option(
      '--port <n>',
      'port (0: any free port)',
      (v) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 0 || n > 65535)
          throw new InvalidArgumentError(
            `--port takes an integer from 0 to 65535, got ${JSON.stringify(v)}.`,
          );
        return n;
      },
      7860,
    )
    .option(
      '--host <address>',
      'address to bind; other machines can reach anything but 127.0.0.1',
      '127.0.0.1',
    )
    .option('--k <n>', 'default number of neighbours', positiveInt('--k'), 10)
    .option('--max-upload-mb <n>', 'largest upload in MiB', positiveInt('--max-upload-mb'), 16)
    .option(
      '--max-megapixels <n>',
      'largest decoded upload in megapixels',
      positiveInt('--max-megapixels'),
      64,
    )
    .addOption(engineOption())
    .option('--threads <n>', 'onnx engine: threads', positiveInt('--threads'))
    .action(async (file: string, o) => {
      const store = EmbeddingStore.open(file, { readonly: true });
      const model = store.model();
      if (!model)
        throw new Error(`${file} holds no vectors yet; run \`pnpm embed\` into it first.`);
      let engine: Awaited<ReturnType<typeof openStoreEngine>> | null = null;
      try {
        engine = await openStoreEngine(model, file, { engine: o.engine, threads: o.threads });
      } catch (err) {
        process.stderr.write(
          `warning: ${(err as Error).message} Uploads are refused; search by id works.\n`,
        );
      }
      const { app, close } = searchApp(store, engine, {
        defaultK: o.k,
        maxUploadBytes: o.maxUploadMb * 2 ** 20,
        maxPixels: o.maxMegapixels * 2 ** 20,
      });
      const { server, url } = await startServer(app, { port: o.port, host: o.host });
      console.log(
        `serving ${file} (${store.size} items, engine ${engine?.name ?? 'none'}) at ${url}`,
      );
      const stop = () => {
        server.close();
        close();
        store.close();
        void engine?.close();
        process.exit(0);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });

  program
    .command('export')
    .description(
      'Export a run’s backbone as ONNX (opset 13, NCHW input) or as the TF.js layers model.',
    )
    .argument('<model>', 'a run id or an exported model folder')
    .addOption(
      new Option('--format <format>', 'onnx or tfjs').choices(['onnx', 'tfjs']).default('onnx'),
    )
    .option('--out <path>', 'output file (onnx) or folder (tfjs); default: next to the model')
    .option('--runs-db <file>', 'runs database', DEFAULT_CONFIG.runsDb)
    .action(async (target: string, o) => {
      const m = resolveModel(target, o.runsDb);
      if (o.format === 'onnx') {
        const out = resolve(o.out ?? join(m.modelDir, 'model.onnx'));
        const { initBackend } = await import('@maskcon/model');
        await initBackend('wasm', () => {});
        const { model, meta } = await loadBackbone(m.modelDir);
        writeOnnxModel(out, layersModelToOnnx(model, meta));
        console.log(
          `${out}: ONNX (opset 13) of ${meta.arch}, input 'image' N×${meta.inputShape[2]}×${meta.inputShape[0]}×${meta.inputShape[1]} normalised with mean ${JSON.stringify(meta.mean)}, std ${JSON.stringify(meta.std)}; output 'features'.`,
        );
      } else {
        const out = resolve(o.out ?? `${m.modelDir}-tfjs`);
        if (out === m.modelDir)
          throw new Error('--out is the model folder itself; give another folder.');
        const tmp = join(dirname(out), `.${basename(out)}.tmp-${process.pid}`);
        rmSync(tmp, { recursive: true, force: true });
        cpSync(m.modelDir, tmp, { recursive: true, filter: (s) => !s.endsWith('.onnx') });
        if (existsSync(out)) rmSync(out, { recursive: true, force: true });
        renameSync(tmp, out);
        const meta = JSON.parse(readFileSync(join(out, 'model.json'), 'utf8')).userDefinedMetadata
          ?.maskcon;
        console.log(
          `${out}: TF.js layers model (${meta?.arch ?? '?'}); load it with tf.loadLayersModel — see packages/model/README.md for plain Node.`,
        );
      }
    });

  return program;
}

async function main(): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode;
      return;
    }
    process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}

// Run as a program (also through an installed bin, which may be a symlink), not when imported.
if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url))
  await main();
