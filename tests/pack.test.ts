/**
 * The packages as others get them: build, `pnpm pack` every publishable package, install the
 * tarballs into a scratch project outside the repository with no network (the local pnpm store
 * plus metadata derived from our lockfile, see offline-registry.ts), then run each package
 * README's first example with plain `node` (no tsx, no source condition) and type-check a
 * consumer under the strictest common settings against the shipped declarations.
 *
 * The examples' outputs are checked against the same computations done here from the sources.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImage, makePipeline } from '@maskcon/augment';
import { Rng, streamRng } from '@maskcon/random';
import { recallAtK } from '@maskcon/eval';
import { decodeOnnxModel, encodeOnnxModel, ONNX_FLOAT } from '@maskcon/onnx';
import {
  backbone,
  createNetwork,
  initBackend,
  loadPretrainedBackbone,
  saveBackboneSafetensors,
} from '@maskcon/model';
import { writeOfflineMetadata } from './offline-registry.js';

const repo = resolve(import.meta.dirname, '..');
const PACKAGES = [
  'random',
  'onnx',
  'datasets',
  'augment',
  'native',
  'model',
  'eval',
  'train',
  'search',
];
/** Files beyond dist/ a package ships on purpose: native's addon sources, built on install. */
const EXTRA_FILES: Record<string, RegExp> = {
  '@maskcon/native': /^package\/(binding\.gyp|src\/(addon|memory-ops)\.cc|scripts\/build\.mjs)$/,
};
const SPEC = {
  arch: 'resnet18',
  width: 64,
  inChannels: 3,
  stem: 'small',
  projHidden: 512,
  projDim: 128,
} as const;

let scratch = '';
let app = '';
const tarballs = new Map<string, string>(); // package name → tarball path
const manifests = new Map<string, Record<string, unknown>>();

/** The environment of a process outside the repository: no source condition, no tsx. */
function plainEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  for (const k of Object.keys(env))
    if (k.startsWith('npm_') || k.startsWith('PNPM_')) delete env[k];
  return env;
}

interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs a command without blocking the test process (vitest's RPC keeps running). */
async function spawnPlain(
  cmd: string,
  args: string[],
  cwd: string,
  timeout: number,
): Promise<RunResult> {
  try {
    const { stdout, stderr } = await promisify(execFile)(cmd, args, {
      cwd,
      env: plainEnv(),
      encoding: 'utf8',
      timeout,
      maxBuffer: 64 << 20,
    });
    return { status: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number | string; stdout?: string; stderr?: string; message: string };
    const status = typeof err.code === 'number' ? err.code : -1;
    return { status, stdout: err.stdout ?? '', stderr: `${err.stderr ?? ''}\n${err.message}` };
  }
}

async function run(
  cmd: string,
  args: string[],
  cwd: string,
  timeout = 120_000,
): Promise<RunResult> {
  const r = await spawnPlain(cmd, args, cwd, timeout);
  if (r.status !== 0) {
    throw new Error(
      `${cmd} ${args.join(' ')} (in ${cwd}) exited with ${r.status}:\n${r.stdout}\n${r.stderr}`,
    );
  }
  return r;
}

/** The first ```js block of a package README, which must be its runnable example. */
function readmeExample(pkg: string): string {
  const text = readFileSync(join(repo, 'packages', pkg, 'README.md'), 'utf8');
  const m = /```js\n([\s\S]*?)```/.exec(text);
  if (!m?.[1]) throw new Error(`packages/${pkg}/README.md has no \`\`\`js example.`);
  return m[1];
}

/** Runs a README example with plain node in the scratch project; returns its last line as JSON. */
async function runExample(pkg: string): Promise<Record<string, unknown>> {
  const file = join(app, `${pkg}-example.mjs`);
  writeFileSync(file, readmeExample(pkg));
  const r = await run(process.execPath, [file], app);
  const last = r.stdout.trim().split('\n').at(-1) ?? '';
  return JSON.parse(last) as Record<string, unknown>;
}

/** 12 PNGs in 2 coarse × 2 fine classes (3 each; the last of each fine class is test). */
async function writeShop(dir: string): Promise<{ coarse: string[]; fine: string[] }> {
  mkdirSync(join(dir, 'images'), { recursive: true });
  const rows = ['path,coarse,fine,split'];
  const coarse: string[] = [];
  const fine: string[] = [];
  for (let i = 0; i < 12; i++) {
    const c = i % 2 === 0 ? 'lamp' : 'sofa';
    const f = `${c}-${(i >> 1) % 2}`;
    const split = i >= 8 ? 'test' : 'train';
    const rng = new Rng(100 + i);
    const px = Buffer.alloc(40 * 48 * 3);
    for (let j = 0; j < px.length; j++) px[j] = (j * (i + 3) + rng.int(64)) & 255;
    await sharp(px, { raw: { width: 48, height: 40, channels: 3 } })
      .png()
      .toFile(join(dir, 'images', `${i}.png`));
    rows.push(`images/${i}.png,${c},${f},${split}`);
    if (split === 'train') {
      coarse.push(c);
      fine.push(f);
    }
  }
  writeFileSync(join(dir, 'labels.csv'), `${rows.join('\n')}\n`);
  return { coarse, fine };
}

/** Same data as the eval README example. */
function evalExampleData(): { embeddings: Float32Array; labels: Int32Array; dim: number } {
  const n = 3000;
  const dim = 64;
  const labels = Int32Array.from({ length: n }, (_, i) => i % 30);
  const embeddings = Float32Array.from(
    { length: n * dim },
    (_, j) => Math.sin(j * 12.9898) * 4 + (j % dim === labels[Math.floor(j / dim)] ? 1 : 0),
  );
  return { embeddings, labels, dim };
}

let shop: { coarse: string[]; fine: string[] };

beforeAll(async () => {
  await run('pnpm', ['exec', 'turbo', 'run', 'build', '--output-logs=errors-only'], repo, 300_000);
  scratch = mkdtempSync(join(tmpdir(), 'maskcon-pack-'));
  expect(relative(repo, scratch).startsWith('..')).toBe(true);
  const tgz = join(scratch, 'tgz');
  mkdirSync(tgz);
  for (const pkg of PACKAGES) {
    const dir = join(repo, 'packages', pkg);
    await run('pnpm', ['pack', '--pack-destination', tgz], dir);
  }
  for (const file of readdirSync(tgz)) {
    const list = (await run('tar', ['-tzf', join(tgz, file)], tgz)).stdout.trim().split('\n');
    const manifest = JSON.parse(
      (await run('tar', ['-xzOf', join(tgz, file), 'package/package.json'], tgz)).stdout,
    ) as Record<string, unknown> & { name: string };
    tarballs.set(manifest.name, join(tgz, file));
    manifests.set(manifest.name, { ...manifest, files: list });
  }

  writeOfflineMetadata(join(repo, 'pnpm-lock.yaml'), join(scratch, 'cache'));
  app = join(scratch, 'app');
  mkdirSync(app);
  const local = Object.fromEntries([...tarballs].map(([name, file]) => [name, `file:${file}`]));
  writeFileSync(
    join(app, 'package.json'),
    JSON.stringify({
      name: 'scratch-consumer',
      private: true,
      type: 'module',
      dependencies: { ...local, '@tensorflow/tfjs': '4.22.0' },
      devDependencies: { typescript: '5.9.3', '@types/node': '20.19.43' },
      pnpm: {
        // the tarballs name each other by version range; these are not on any registry yet
        overrides: local,
        // @maskcon/native compiles its oneDNN addon at install (scripts/build.mjs)
        onlyBuiltDependencies: ['@maskcon/native', 'better-sqlite3', 'sharp'],
        ignoredBuiltDependencies: [
          '@tensorflow/tfjs-node',
          '@tensorflow/tfjs-node-gpu',
          'core-js',
          'onnxruntime-node',
        ],
      },
    }),
  );
  await run('pnpm', ['install', '--offline', '--cache-dir', join(scratch, 'cache')], app, 240_000);

  shop = await writeShop(join(app, 'shop'));
  await initBackend('cpu', () => {});
  const trained = createNetwork(SPEC, 1);
  saveBackboneSafetensors(trained, join(app, 'resnet18.safetensors'));
  trained.dispose();
}, 600_000);

afterAll(() => {
  if (scratch && !process.env.MASKCON_KEEP_PACK) rmSync(scratch, { recursive: true, force: true });
});

describe('packed packages', () => {
  it('ship only dist, README, CHANGELOG, LICENSE, with real version ranges and no source condition', () => {
    expect([...tarballs.keys()].sort()).toEqual(PACKAGES.map((p) => `@maskcon/${p}`).sort());
    for (const [name, m] of manifests) {
      const files = m.files as string[];
      const stray = files.filter(
        (f) =>
          !EXTRA_FILES[name]?.test(f) &&
          !/^package\/(dist\/.+\.(js|d\.ts|js\.map)|README\.md|CHANGELOG\.md|LICENSE|package\.json)$/.test(
            f,
          ),
      );
      expect(stray, name).toEqual([]);
      expect(files, name).toContain('package/dist/index.js');
      expect(files, name).toContain('package/dist/index.d.ts');
      expect(
        files.some((f) => /\.test\.|\.py$|tsconfig/.test(f)),
        name,
      ).toBe(false);
      expect(JSON.stringify(m.exports), name).not.toContain('source');
      expect(m.exports, name).toEqual({
        '.': { types: './dist/index.d.ts', default: './dist/index.js' },
      });
      const deps = { ...(m.dependencies as Record<string, string>) };
      for (const [dep, range] of Object.entries(deps)) {
        expect(range, `${name} → ${dep}`).not.toMatch(/workspace:/);
        if (dep.startsWith('@maskcon/'))
          expect(range, `${name} → ${dep}`).toMatch(/^\^\d+\.\d+\.\d+$/);
      }
      expect(m.sideEffects, name).toBeDefined();
    }
    expect(manifests.get('@maskcon/train')?.bin).toEqual({ 'maskcon-train': './dist/cli.js' });
    expect(manifests.get('@maskcon/search')?.bin).toEqual({ 'maskcon-search': './dist/cli.js' });
    expect(manifests.get('@maskcon/eval')?.dependencies ?? {}).not.toHaveProperty('tsx');
    expect(manifests.get('@maskcon/train')?.dependencies ?? {}).not.toHaveProperty('tsx');
  });

  it('random: the README example draws the numbers the sources draw, with no dependencies', async () => {
    const out = (await runExample('random')) as {
      draws: number[];
      order: number[];
      sameForSameSeed: boolean;
      forked: number;
    };
    const rng = new Rng(42);
    expect(out.draws).toEqual([rng.next(), rng.uniform(-1, 1), rng.int(10)]);
    expect(out.order).toEqual(Array.from(streamRng('epochOrder', 42, 3).permutation(8)));
    expect(out.sameForSameSeed).toBe(true);
    expect(out.forked).toBe(new Rng(42).fork(1).nextU32());
    expect(manifests.get('@maskcon/random')?.dependencies ?? {}).toEqual({});
    expect(manifests.get('@maskcon/model')?.dependencies ?? {}).not.toHaveProperty(
      '@maskcon/augment',
    );
  });

  it('onnx: the README example encodes a graph and decodes it back, as the sources do', async () => {
    const out = (await runExample('onnx')) as Record<string, unknown>;
    const W = Float32Array.from([1, 0, 0, 1, 1, 1]);
    const bytes = encodeOnnxModel({
      irVersion: 8,
      opset: 17,
      producerName: 'readme',
      producerVersion: '1',
      docString: '',
      graphName: 'linear',
      nodes: [{ name: 'gemm', opType: 'Gemm', input: ['x', 'W'], output: ['y'] }],
      initializers: [
        { name: 'W', dataType: ONNX_FLOAT, dims: [3, 2], rawData: new Uint8Array(W.buffer) },
      ],
      inputs: [{ name: 'x', dims: ['batch', 3] }],
      outputs: [{ name: 'y', dims: ['batch', 2] }],
      metadata: { note: 'a 3→2 linear map' },
    });
    const model = decodeOnnxModel(bytes);
    expect(out).toEqual({
      bytes: bytes.length,
      opTypes: ['Gemm'],
      inputs: model.inputs,
      initializers: [{ name: 'W', dims: [3, 2], bytes: 24 }],
      metadata: { note: 'a 3→2 linear map' },
    });
    expect(Object.keys(manifests.get('@maskcon/onnx')?.dependencies ?? {})).toEqual(['protobufjs']);
    expect(manifests.get('@maskcon/eval')?.dependencies ?? {}).not.toHaveProperty('@maskcon/model');
  });

  it('native: the tarball compiles its addon at install and it loads, or it says why not', async () => {
    const r = await run(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "const { loadNative } = await import('@maskcon/native'); const n = loadNative();" +
          ' console.log(JSON.stringify({ ok: n.ok, reason: n.ok ? undefined : n.reason,' +
          ' kernels: n.ok ? Object.keys(n.kernels).sort() : [] }));',
      ],
      app,
    );
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '') as {
      ok: boolean;
      reason?: string;
      kernels: string[];
    };
    // One or the other, decided by this machine: the addon is built where oneDNN's headers are
    // (scripts/install.sh installs libdnnl-dev), and otherwise the install left its reason.
    const buildable =
      process.platform === 'linux' &&
      process.arch === 'x64' &&
      existsSync('/usr/include/oneapi/dnnl/dnnl.hpp');
    if (buildable) {
      expect(out, out.reason).toMatchObject({ ok: true });
      expect(out.kernels).toContain('conv');
      expect(
        existsSync(join(app, 'node_modules/@maskcon/native/build/Release/maskcon_native.node')),
      ).toBe(true);
    } else {
      expect(out.ok).toBe(false);
      expect(out.reason).toMatch(
        /^@maskcon\/native: (oneDNN headers not found|oneDNN addon is built only on linux-x64)/,
      );
    }
  });

  it('datasets: the README example builds an index from a CSV of images and reads it back', async () => {
    const out = (await runExample('datasets')) as {
      path: string;
      counts: { train: number; test: number };
      size: number;
      fine: number[];
      coarse: number[];
      first: number[];
    };
    expect(out.path).toBe(join(app, 'data', 'shop.sqlite'));
    expect(out.counts).toEqual({ train: 8, test: 4 });
    expect(out.size).toBe(8);
    // names are numbered in sorted order; rows keep the CSV's order
    const fineNames = [...new Set(shop.fine)].sort();
    const coarseNames = [...new Set(shop.coarse)].sort();
    expect(out.fine).toEqual(shop.fine.map((f) => fineNames.indexOf(f)));
    expect(out.coarse).toEqual(shop.coarse.map((c) => coarseNames.indexOf(c)));
    expect(out.first).toEqual([32, 38, 3]); // 48×40 resized to shorter side 32
  });

  it('augment: the README example makes a strong view equal to the one made from sources', async () => {
    const out = (await runExample('augment')) as {
      length: number;
      sameForSameSeed: boolean;
      sum: number;
    };
    const image = await decodeImage(readFileSync(join(app, 'shop/images/0.png')));
    const strong = makePipeline('strong', {
      size: 32,
      mean: [0.5, 0.5, 0.5],
      std: [0.25, 0.25, 0.25],
    });
    const view = strong(image, new Rng(7));
    expect(out.length).toBe(32 * 32 * 3);
    expect(out.sameForSameSeed).toBe(true);
    expect(out.sum).toBe(view.reduce((a, b) => a + b, 0));
  });

  it('model: the README example loads ResNet-18 weights and embeds two images as the sources do', async () => {
    const out = (await runExample('model')) as { loaded: number; shape: number[]; cosine: number };
    const net = createNetwork(SPEC, 0);
    const { loaded } = loadPretrainedBackbone(net, join(app, 'resnet18.safetensors'));
    const test = makePipeline('test', { size: 32, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] });
    const pixels = new Float32Array(2 * 32 * 32 * 3);
    for (const i of [0, 1]) {
      const img = await decodeImage(readFileSync(join(app, `shop/images/${i}.png`)));
      test(img, new Rng(0), pixels, i * 32 * 32 * 3);
    }
    const f = tf.tidy(() =>
      backbone(net, tf.tensor4d(pixels, [2, 32, 32, 3]), { training: false, bnSplits: 1 }),
    );
    const [a = [], b = []] = (await f.array()) as number[][];
    f.dispose();
    const dot = (u: number[], v: number[]) => u.reduce((s, x, i) => s + x * (v[i] ?? 0), 0);
    const cosine = dot(a, b) / Math.sqrt(dot(a, a) * dot(b, b));
    expect(out.loaded).toBe(loaded.length);
    // ResNet-18: 20 convolutions + 20 BatchNorms × (weight, bias, running mean, running var)
    expect(out.loaded).toBe(100);
    expect(out.shape).toEqual([2, 512]);
    expect(out.cosine).toBeCloseTo(cosine, 4);
    // the weights matter: a network that kept its own initialisation embeds differently
    const fresh = createNetwork(SPEC, 0);
    const g = tf.tidy(() =>
      backbone(fresh, tf.tensor4d(pixels, [2, 32, 32, 3]), { training: false, bnSplits: 1 }),
    );
    const [c = [], d = []] = (await g.array()) as number[][];
    g.dispose();
    expect(Math.abs(dot(c, d) / Math.sqrt(dot(c, c) * dot(d, d)) - out.cosine)).toBeGreaterThan(
      1e-4,
    );
  });

  it('eval: the README example computes Recall@K on worker threads, equal to recallAtK', async () => {
    const out = await runExample('eval');
    const { embeddings, labels, dim } = evalExampleData();
    const expected = recallAtK(embeddings, dim, labels, [1, 2, 5, 10]);
    expect(out).toEqual(JSON.parse(JSON.stringify(expected)));
    expect(out['1']).toBeGreaterThan(0.1);
  });

  it('train, search: maskcon-train --help and maskcon-search --help run from the installed bins', async () => {
    const r = await run(join(app, 'node_modules', '.bin', 'maskcon-train'), ['--help'], app);
    expect(r.stdout).toContain('--dataset');
    expect(r.stdout).toContain('--preset');
    const search = await run(join(app, 'node_modules', '.bin', 'maskcon-search'), ['--help'], app);
    expect(search.stdout).toContain('embed');
  });

  it('the declarations type-check in a strict consumer (skipLibCheck off)', async () => {
    writeFileSync(
      join(app, 'consumer.ts'),
      [
        "import { openIndex, buildDataset, type CoarseFineDataset } from '@maskcon/datasets';",
        "import { Rng, streamRng, RANDOM_STREAMS } from '@maskcon/random';",
        "import { encodeOnnxModel, decodeOnnxModel } from '@maskcon/onnx';",
        "import { makePipeline, Rng as AugmentRng, BatchLoader } from '@maskcon/augment';",
        "import { createNetwork, MaskConModel, loadPretrainedBackbone } from '@maskcon/model';",
        "import { recallAtK, recallAtKParallel } from '@maskcon/eval';",
        "import { train, parseTrainArgs } from '@maskcon/train';",
        "import { embedImage, startServer } from '@maskcon/search';",
        'export const used = [openIndex, buildDataset, makePipeline, Rng, streamRng, RANDOM_STREAMS,',
        '  AugmentRng, BatchLoader, createNetwork, encodeOnnxModel, decodeOnnxModel,',
        '  MaskConModel, loadPretrainedBackbone, recallAtK, recallAtKParallel, train, parseTrainArgs,',
        '  embedImage, startServer];',
        'export type D = CoarseFineDataset;',
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noUncheckedIndexedAccess: true,
          exactOptionalPropertyTypes: true,
          skipLibCheck: false,
          noEmit: true,
          types: ['node'],
        },
        files: ['consumer.ts'],
      }),
    );
    const r = await spawnPlain(
      process.execPath,
      [join(app, 'node_modules/typescript/bin/tsc'), '-p', app],
      app,
      180_000,
    );
    const errors = r.stdout.split('\n').filter((l) => /error TS\d+/.test(l));
    // Ours: no error in our declarations or in the consumer using them.
    const ours = errors.filter((l) => !l.includes('node_modules/.pnpm/@tensorflow+'));
    expect(ours, r.stdout + r.stderr).toEqual([]);
    // TensorFlow.js 4.22's own declarations fail these settings (missing ambient types
    // EmscriptenModule/Long, LayersModel vs InferenceModel under strict null checks); they are
    // the only errors, and they are in files we do not ship.
    for (const l of errors) expect(l).toMatch(/^node_modules\/\.pnpm\/@tensorflow\+tfjs-/);
  });
});
