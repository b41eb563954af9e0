/**
 * A streaming tar reader (POSIX ustar, pax extended headers, GNU long names), optionally
 * through gunzip, for the CIFAR archives. Entries are read in archive order and never
 * written to disk; their names are still checked as if they were to be extracted, so an
 * archive with absolute paths, `..` components, links or absurd sizes is refused.
 */
import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { DatasetError } from '../errors.js';
import { ChunkReader, ShortRead } from './chunk-reader.js';

export interface TarEntry {
  /** Normalised relative path (`a/b/c`), no leading `./`. */
  readonly name: string;
  readonly size: number;
  readonly type: 'file' | 'directory';
  /** Read the whole body into memory (at most `maxEntryBytes`). Call before the next entry. */
  read(): Promise<Buffer>;
  /**
   * The first `n` bytes of the body (fewer if it is shorter), without consuming them: check a
   * format's magic before `read()` pulls a body of hundreds of megabytes into memory.
   */
  head(n: number): Promise<Buffer>;
}

export interface TarOptions {
  /** Largest entry accepted (default 4 GiB). */
  readonly maxEntryBytes?: number;
  /** Largest total of decompressed bytes (default 64 GiB). */
  readonly maxTotalBytes?: number;
  /** Treat the file as gzip (default: from the first two bytes). */
  readonly gzip?: boolean;
}

const BLOCK = 512;

/** Does a relative archive path stay inside the folder it would be extracted to? */
export function safeArchivePath(raw: string): string | undefined {
  if (raw.includes('\0') || raw.includes('\\')) return undefined;
  if (raw.startsWith('/') || /^[A-Za-z]:/.test(raw)) return undefined;
  const parts: string[] = [];
  for (const part of raw.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') return undefined;
    parts.push(part);
  }
  return parts.join('/');
}

function parseOctal(field: Buffer, what: string, fail: (why: string) => never): number {
  // GNU base-256: high bit of the first byte set, big-endian binary follows.
  if (field[0] & 0x80) {
    let v = field[0] & 0x7f;
    for (let i = 1; i < field.length; i++) v = v * 256 + field[i];
    if (!Number.isSafeInteger(v)) fail(`${what} is beyond 2^53`);
    return v;
  }
  const text = field.toString('latin1').replace(/\0.*$/s, '').trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) fail(`${what} field '${text}' is not an octal number`);
  return Number.parseInt(text, 8);
}

function cString(field: Buffer): string {
  const end = field.indexOf(0);
  return field.subarray(0, end < 0 ? field.length : end).toString('utf8');
}

/** Parse pax `len key=value\n` records. */
function parsePax(body: Buffer, fail: (why: string) => never): Map<string, string> {
  const out = new Map<string, string>();
  let pos = 0;
  while (pos < body.length) {
    const space = body.indexOf(0x20, pos);
    if (space < 0) fail('has a malformed pax header');
    const len = Number(body.subarray(pos, space).toString('latin1'));
    if (!Number.isInteger(len) || len <= 0 || pos + len > body.length)
      fail('has a malformed pax record length');
    const record = body.subarray(space + 1, pos + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq < 0) fail('has a pax record without =');
    out.set(record.slice(0, eq), record.slice(eq + 1));
    pos += len;
  }
  return out;
}

/** Stream the entries of a tar or tar.gz file. Only regular files and directories are yielded. */
export async function* readTar(path: string, options: TarOptions = {}): AsyncGenerator<TarEntry> {
  const maxEntry = options.maxEntryBytes ?? 4 * 2 ** 30;
  const maxTotal = options.maxTotalBytes ?? 64 * 2 ** 30;
  const gzip = options.gzip ?? (await startsWithGzipMagic(path));
  const file = createReadStream(path, { highWaterMark: 1 << 20 });
  const stream = gzip ? file.pipe(createGunzip({ chunkSize: 1 << 20 })) : file;
  stream.on('error', () => {}); // surfaced by the iterator below
  file.on('error', (e) => stream.destroy(e));
  const reader = new ChunkReader(stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>);
  let headerAt = 0;
  const fail = (why: string): never => {
    throw new DatasetError(
      `Archive ${path}: the entry header at byte ${headerAt} ${why}; the archive is corrupt or unsafe and was refused.`,
    );
  };

  let paxNext = new Map<string, string>();
  let paxGlobal = new Map<string, string>();
  let longName: string | undefined;
  /** Names seen so far: a second entry with one name means different things to different extractors. */
  const seen = new Map<string, 'file' | 'directory'>();
  try {
    for (;;) {
      headerAt = reader.total;
      const header = await reader.read(BLOCK);
      if (!header) break; // archive without end-of-archive blocks
      if (header.every((b) => b === 0)) break; // end of archive
      const stored = parseOctal(header.subarray(148, 156), 'checksum', fail);
      let sum = 0;
      for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i];
      if (sum !== stored)
        fail(`has checksum ${stored} but its bytes sum to ${sum} (not a tar archive, or corrupt)`);

      const typeflag = String.fromCharCode(header[156] || 0x30);
      let size = parseOctal(header.subarray(124, 136), 'size', fail);
      let name = cString(header.subarray(0, 100));
      const magic = header.subarray(257, 263).toString('latin1');
      if (magic.startsWith('ustar')) {
        const prefix = cString(header.subarray(345, 500));
        if (prefix && magic === 'ustar\0') name = `${prefix}/${name}`;
      }
      const padded = Math.ceil(size / BLOCK) * BLOCK;

      if (typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K') {
        if (size > 1 << 20) fail(`is a ${size}-byte metadata header (limit 1 MiB)`);
        const body = (await reader.read(padded)) ?? Buffer.alloc(0);
        const content = body.subarray(0, size);
        if (typeflag === 'x') paxNext = parsePax(content, fail);
        else if (typeflag === 'g') paxGlobal = new Map([...paxGlobal, ...parsePax(content, fail)]);
        else if (typeflag === 'L') longName = cString(content);
        // 'K' (GNU long link name) only matters for links, which are refused anyway.
        continue;
      }

      const pax = new Map([...paxGlobal, ...paxNext]);
      paxNext = new Map();
      if (longName !== undefined) name = longName;
      longName = undefined;
      if (pax.has('path')) name = pax.get('path') as string;
      if (pax.has('size')) {
        size = Number(pax.get('size'));
        if (!Number.isSafeInteger(size) || size < 0) fail(`has pax size '${pax.get('size')}'`);
      }
      const dataBlocks = Math.ceil(size / BLOCK) * BLOCK;

      const where = `entry '${name}'`;
      if (typeflag === '1' || typeflag === '2') {
        fail(
          `is ${where}, a ${typeflag === '1' ? 'hard link' : 'symbolic link'}; links are refused`,
        );
      }
      if (!['0', '5', '7'].includes(typeflag)) {
        fail(
          `is ${where} of type '${typeflag}' (device, FIFO or unknown); only files and folders are accepted`,
        );
      }
      const safe = safeArchivePath(name);
      if (safe === undefined)
        fail(`is ${where}, whose path escapes the folder it would be extracted to`);
      const type = typeflag === '5' ? 'directory' : 'file';
      const earlier = seen.get(safe as string);
      if (earlier !== undefined && (earlier === 'file' || type === 'file'))
        fail(`is ${where} again; an archive must not hold two entries with one name`);
      seen.set(safe as string, type);
      if (size > maxEntry) fail(`is ${where} of ${size} bytes, over the ${maxEntry}-byte limit`);
      if (reader.total + dataBlocks > maxTotal) fail(`takes the archive past ${maxTotal} bytes`);

      let consumed = false;
      const entry: TarEntry = {
        name: safe as string,
        size,
        type,
        head: async (n: number) => {
          if (consumed) throw new Error(`Tar entry ${name} was already read.`);
          try {
            return await reader.peek(Math.min(n, size));
          } catch (error) {
            throw translate(error);
          }
        },
        read: async () => {
          if (consumed) throw new Error(`Tar entry ${name} was already read.`);
          consumed = true;
          if (size === 0) {
            await reader.skip(dataBlocks);
            return Buffer.alloc(0);
          }
          try {
            const body = await reader.read(size);
            await reader.skip(dataBlocks - size);
            return body ?? Buffer.alloc(0);
          } catch (error) {
            throw translate(error);
          }
        },
      };
      yield entry;
      if (!consumed) {
        consumed = true;
        await reader.skip(dataBlocks);
      }
    }
  } catch (error) {
    throw translate(error);
  } finally {
    file.destroy();
    stream.destroy();
  }

  function translate(error: unknown): unknown {
    if (error instanceof ShortRead) {
      return new DatasetError(
        `Archive ${path} ends in the middle of the entry that starts at byte ${headerAt} (after ${reader.total} bytes); it is truncated — download it again.`,
      );
    }
    if (error instanceof DatasetError) return error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'Z_BUF_ERROR' || code === 'Z_DATA_ERROR') {
      return new DatasetError(
        `Archive ${path} is not valid gzip or is truncated (${(error as Error).message}); download it again.`,
      );
    }
    if (code === 'ENOENT') return new DatasetError(`Archive ${path} does not exist.`);
    return error;
  }
}

async function startsWithGzipMagic(path: string): Promise<boolean> {
  const { open } = await import('node:fs/promises');
  let handle: import('node:fs/promises').FileHandle | undefined;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    throw new DatasetError(`Archive ${path} cannot be opened: ${(error as Error).message}.`);
  }
  try {
    const b = Buffer.alloc(2);
    const { bytesRead } = await handle.read(b, 0, 2, 0);
    return bytesRead === 2 && b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    await handle.close();
  }
}
