/**
 * `--download`: fetch the published files of the datasets that have public URLs (CIFAR-10,
 * CIFAR-100, Fashion-MNIST) into a cache folder, resuming a partial `<file>.part` with an HTTP
 * Range request, and verifying the publisher's md5 before a file is used. A file with the
 * wrong checksum is deleted and reported; a transfer cut short keeps its `.part` so the next
 * run resumes it.
 */
import { createHash } from 'node:crypto';
import {
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import { DatasetError } from './errors.js';

/** Where downloads go: `$MASKCON_CACHE` or `./data/cache`. */
export function defaultCacheDir(): string {
  return process.env.MASKCON_CACHE ?? join('data', 'cache');
}

export interface DownloadFile {
  readonly name: string;
  readonly md5: string;
}

export interface DownloadSet {
  /** Cache sub-folder, also the default `--root` of the datasets built from it. */
  readonly folder: string;
  readonly baseUrl: string;
  readonly files: readonly DownloadFile[];
}

/** The published files and their publishers' md5 checksums. */
export const DOWNLOAD_SETS = {
  cifar10: {
    folder: 'cifar10',
    baseUrl: 'https://www.cs.toronto.edu/~kriz',
    files: [{ name: 'cifar-10-python.tar.gz', md5: 'c58f30108f718f92721af3b95e74349a' }],
  },
  cifar100: {
    folder: 'cifar100',
    baseUrl: 'https://www.cs.toronto.edu/~kriz',
    files: [{ name: 'cifar-100-python.tar.gz', md5: 'eb9058c3a382ffc7106e4002c42a8d85' }],
  },
  fashion_mnist: {
    folder: 'fashion_mnist',
    baseUrl: 'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com',
    files: [
      { name: 'train-images-idx3-ubyte.gz', md5: '8d4fb7e6c68d591d4c3dfef9ec88bf0d' },
      { name: 'train-labels-idx1-ubyte.gz', md5: '25c81989df183df01b3e8a0aad5dffbe' },
      { name: 't10k-images-idx3-ubyte.gz', md5: 'bef4ecab320f06d8554ea6380940ec79' },
      { name: 't10k-labels-idx1-ubyte.gz', md5: 'bb300cfdad3c16e7a12a480ee83cd310' },
    ],
  },
} as const satisfies Record<string, DownloadSet>;

/** Which download feeds which registered dataset. */
const SET_OF_DATASET: Readonly<Record<string, keyof typeof DOWNLOAD_SETS>> = {
  cifar100: 'cifar100',
  cifartoy_good: 'cifar10',
  cifartoy_bad: 'cifar10',
  fashion_mnist: 'fashion_mnist',
};

export function downloadableDatasets(): string[] {
  return Object.keys(SET_OF_DATASET);
}

export interface DownloadProgress {
  readonly file: string;
  readonly done: number;
  readonly total?: number;
  readonly bytesPerSecond: number;
  readonly etaSeconds?: number;
}

/** A publisher's checksum: a full hex digest, or its leading digits (torchvision's file names carry the first 8 hex of the SHA-256). */
export interface Checksum {
  readonly algorithm: 'md5' | 'sha256';
  readonly hex: string;
}

export interface DownloadOptions {
  /** Cache folder (default `$MASKCON_CACHE` or `./data/cache`). */
  readonly cacheDir?: string;
  /** Replace every publisher URL base (default `$MASKCON_DOWNLOAD_BASE`), e.g. a mirror. */
  readonly baseUrl?: string;
  readonly onProgress?: (progress: DownloadProgress) => void;
  /** Give up on a silent connection after this long (default 60 s). */
  readonly timeoutMs?: number;
  /** How to get the file by hand, ending the checksum-mismatch error (default: pass --root DIR). */
  readonly manualHint?: string;
}

/**
 * Download (or find already verified in the cache) the files `dataset` is built from;
 * returns the folder to pass as its root.
 */
export async function downloadDataset(
  dataset: string,
  options: DownloadOptions = {},
): Promise<string> {
  const setName = SET_OF_DATASET[dataset];
  if (!setName) {
    throw new DatasetError(
      `Dataset '${dataset}' has no public download; get its files yourself and pass --root DIR. Downloadable: ${downloadableDatasets().join(', ')}.`,
    );
  }
  const set: DownloadSet = DOWNLOAD_SETS[setName];
  const folder = join(options.cacheDir ?? defaultCacheDir(), set.folder);
  mkdirSync(folder, { recursive: true });
  const base = (options.baseUrl ?? process.env.MASKCON_DOWNLOAD_BASE ?? set.baseUrl).replace(
    /\/+$/,
    '',
  );
  for (const file of set.files) {
    await downloadVerified(`${base}/${file.name}`, join(folder, file.name), file.md5, options);
  }
  return folder;
}

/** md5 of a file, streamed. */
export async function md5File(path: string): Promise<string> {
  return hashFile(path, 'md5');
}

/** Hex digest of a file, streamed. */
export async function hashFile(path: string, algorithm: Checksum['algorithm']): Promise<string> {
  const hash = createHash(algorithm);
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Make `dest` a verified copy of `url`: keep it if its checksum (an md5 string, or a
 * `Checksum`) already matches, else download to `dest.part` (resuming what is there), check
 * the checksum, then rename into place.
 */
export async function downloadVerified(
  url: string,
  dest: string,
  checksum: string | Checksum,
  options: DownloadOptions = {},
): Promise<void> {
  const want: Checksum =
    typeof checksum === 'string' ? { algorithm: 'md5', hex: checksum } : checksum;
  const matches = async (file: string) =>
    (await hashFile(file, want.algorithm)).startsWith(want.hex.toLowerCase());
  if (existsSync(dest)) {
    if (await matches(dest)) return;
    rmSync(dest, { force: true }); // a stale or damaged cache entry: fetch it again
  }
  const part = `${dest}.part`;
  await fetchToPart(url, part, options);
  if (!(await matches(part))) {
    const actual = await hashFile(part, want.algorithm);
    rmSync(part, { force: true });
    throw new DatasetError(
      `Downloaded ${url} has ${want.algorithm} ${actual}, but the published file ${want.hex.length < actual.length ? `has a ${want.algorithm} starting with ${want.hex}` : `has ${want.algorithm} ${want.hex}`}; the download was corrupted or the server sent a different file. The bad file was deleted — run the command again, or fetch the file yourself ${options.manualHint ?? 'and pass --root DIR'}.`,
    );
  }
  renameSync(part, dest);
}

interface Response {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: http.IncomingMessage;
}

function request(
  url: string,
  headers: Record<string, string>,
  timeoutMs: number,
  redirects = 5,
): Promise<Response> {
  return new Promise((resolvePromise, reject) => {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      reject(new DatasetError(`Download URL '${url}' is not a valid URL.`));
      return;
    }
    const client =
      parsed.protocol === 'https:' ? https : parsed.protocol === 'http:' ? http : undefined;
    if (!client) {
      reject(new DatasetError(`Download URL '${url}' is neither http nor https.`));
      return;
    }
    const req = client.get(
      parsed,
      { headers: { 'user-agent': 'maskcon-datasets', ...headers } },
      (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 300 && status < 400 && res.headers.location) {
          res.resume();
          if (redirects === 0) {
            reject(new DatasetError(`Download of ${url} redirects too many times.`));
            return;
          }
          request(
            new URL(res.headers.location, parsed).toString(),
            headers,
            timeoutMs,
            redirects - 1,
          ).then(resolvePromise, reject);
          return;
        }
        resolvePromise({ status, headers: res.headers, body: res });
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no data for ${timeoutMs / 1000}s`)));
    req.on('error', (error) =>
      reject(
        new DatasetError(
          `Download of ${url} failed: ${error.message}. Run the command again to resume.`,
        ),
      ),
    );
  });
}

async function fetchToPart(url: string, part: string, options: DownloadOptions): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  let have = existsSync(part) ? statSync(part).size : 0;
  let res = await request(url, have > 0 ? { range: `bytes=${have}-` } : {}, timeoutMs);

  if (res.status === 416 && have > 0) {
    // The part is as long as (or longer than) the file: start over rather than guess.
    res.body.resume();
    rmSync(part, { force: true });
    have = 0;
    res = await request(url, {}, timeoutMs);
  }
  let append = false;
  let total: number | undefined;
  if (res.status === 206 && have > 0) {
    const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(String(res.headers['content-range'] ?? ''));
    if (!range || Number(range[1]) !== have) {
      res.body.resume();
      throw new DatasetError(
        `Server for ${url} answered the resume request with range '${res.headers['content-range']}' instead of starting at byte ${have}; delete ${part} and try again.`,
      );
    }
    append = true;
    total = range[3] === '*' ? undefined : Number(range[3]);
  } else if (res.status === 200) {
    have = 0; // server ignored the Range header: the body is the whole file
    const length = Number(res.headers['content-length']);
    total =
      Number.isFinite(length) && res.headers['content-length'] !== undefined ? length : undefined;
  } else {
    res.body.resume();
    throw new DatasetError(`Download of ${url} failed: the server answered HTTP ${res.status}.`);
  }

  const out = createWriteStream(part, { flags: append ? 'a' : 'w' });
  const started = performance.now();
  let received = 0;
  let lastReport = started;
  const report = (final: boolean) => {
    const now = performance.now();
    if (!final && now - lastReport < 500) return;
    lastReport = now;
    const seconds = (now - started) / 1000;
    const bytesPerSecond = seconds > 0 ? received / seconds : 0;
    const done = have + received;
    const etaSeconds =
      total !== undefined && bytesPerSecond > 0 ? (total - done) / bytesPerSecond : undefined;
    options.onProgress?.({ file: url, done, total, bytesPerSecond, etaSeconds });
  };
  try {
    await new Promise<void>((resolvePromise, reject) => {
      res.body.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (!out.write(chunk)) {
          res.body.pause();
          out.once('drain', () => res.body.resume());
        }
        report(false);
      });
      res.body.on('aborted', () => reject(new Error('the connection closed early')));
      res.body.on('error', reject);
      res.body.on('end', () => resolvePromise());
    });
  } catch (error) {
    await new Promise<void>((r) => out.end(r));
    throw new DatasetError(
      `Download of ${url} was cut short after ${have + received}${total !== undefined ? ` of ${total}` : ''} bytes (${(error as Error).message}); the partial file ${part} was kept — run the command again to resume.`,
    );
  }
  await new Promise<void>((resolvePromise, reject) =>
    out.end((error?: Error | null) => (error ? reject(error) : resolvePromise())),
  );
  report(true);
  if (total !== undefined && have + received !== total) {
    throw new DatasetError(
      `Download of ${url} was cut short after ${have + received} of ${total} bytes; the partial file ${part} was kept — run the command again to resume.`,
    );
  }
}

/** A progress listener writing `file: 12.3/162.0 MB (8%) 4.1 MB/s ETA 37s` lines to stderr. */
export function createDownloadPrinter(
  write: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): (p: DownloadProgress) => void {
  const mb = (n: number) => (n / 1024 / 1024).toFixed(1);
  return (p) => {
    let line = `${p.file}: ${mb(p.done)}`;
    if (p.total !== undefined)
      line += `/${mb(p.total)} MB (${p.total > 0 ? Math.floor((100 * p.done) / p.total) : 100}%)`;
    else line += ' MB';
    line += ` ${mb(p.bytesPerSecond)} MB/s`;
    if (p.etaSeconds !== undefined && p.total !== undefined && p.done < p.total)
      line += ` ETA ${Math.ceil(p.etaSeconds)}s`;
    write(line);
  };
}
