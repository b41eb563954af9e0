/**
 * A zip reader for `.npz` archives (numpy's `savez` / `savez_compressed`): the central
 * directory (with zip64 fields, which numpy always writes), stored and deflated entries.
 * Entries are streamed, never extracted; names that would escape an extraction folder,
 * links, encrypted entries, absurd sizes and absurd compression ratios (zip bombs) are
 * refused, and an entry that inflates beyond its declared size is cut off with an error.
 */
import { closeSync, createReadStream, fstatSync, openSync, readSync } from 'node:fs';
import { createInflateRaw, crc32, inflateRawSync } from 'node:zlib';
import { DatasetError } from '../errors.js';
import { safeArchivePath } from './tar.js';

export interface ZipEntry {
  readonly name: string;
  /** 0 = stored, 8 = deflated. */
  readonly method: 0 | 8;
  readonly compressedSize: number;
  readonly size: number;
  readonly crc32: number;
  readonly localHeaderOffset: number;
}

export interface ZipOptions {
  /** Largest uncompressed entry (default 8 GiB). */
  readonly maxEntryBytes?: number;
  /** Largest uncompressed ÷ compressed size of one entry (default 200; deflate tops out near 1032). */
  readonly maxRatio?: number;
  /** Entries smaller than this are exempt from the ratio check (default 1 MiB). */
  readonly ratioExemptBytes?: number;
  readonly maxEntries?: number;
}

const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;
const U32_MAX = 0xffffffff;

function readAt(fd: number, position: number, length: number, path: string): Buffer {
  const out = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, out, done, length - done, position + done);
    if (n === 0)
      throw new DatasetError(
        `Zip archive ${path} ends at byte ${position + done}, inside a header; it is truncated.`,
      );
    done += n;
  }
  return out;
}

function u64(b: Buffer, at: number): number {
  const v = b.readBigUInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError('zip64 field beyond 2^53');
  return Number(v);
}

/** The entries of a zip archive, from its central directory, each checked for safety. */
export function listZip(path: string, options: ZipOptions = {}): ZipEntry[] {
  const maxEntry = options.maxEntryBytes ?? 8 * 2 ** 30;
  const maxRatio = options.maxRatio ?? 200;
  const exempt = options.ratioExemptBytes ?? 1 << 20;
  const maxEntries = options.maxEntries ?? 100_000;
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    throw new DatasetError(`Cannot open zip archive ${path}: ${(error as Error).message}.`);
  }
  try {
    const fileSize = fstatSync(fd).size;
    const fail = (why: string): never => {
      throw new DatasetError(
        `Zip archive ${path}: ${why}; it is corrupt or unsafe and was refused.`,
      );
    };
    // End of central directory: 22 bytes + a comment of up to 65,535 bytes, at the very end.
    const tailLength = Math.min(fileSize, 22 + 65535);
    const tail = readAt(fd, fileSize - tailLength, tailLength, path);
    let eocd = -1;
    for (let i = tail.length - 22; i >= 0; i--) {
      if (tail.readUInt32LE(i) === SIG_EOCD) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) fail('has no end-of-central-directory record (not a zip file, or truncated)');
    let count = tail.readUInt16LE(eocd + 10);
    let cdSize = tail.readUInt32LE(eocd + 12);
    let cdOffset = tail.readUInt32LE(eocd + 16);
    const eocdAt = fileSize - tailLength + eocd;
    if (count === 0xffff || cdSize === U32_MAX || cdOffset === U32_MAX) {
      if (eocdAt < 20) fail('announces zip64 but has no zip64 locator');
      const locator = readAt(fd, eocdAt - 20, 20, path);
      if (locator.readUInt32LE(0) !== SIG_ZIP64_LOCATOR)
        fail('announces zip64 but has no zip64 locator');
      const z64At = u64(locator, 8);
      if (z64At + 56 > fileSize) fail('has a zip64 record outside the file');
      const z64 = readAt(fd, z64At, 56, path);
      if (z64.readUInt32LE(0) !== SIG_ZIP64_EOCD) fail('has a broken zip64 end record');
      count = u64(z64, 32);
      cdSize = u64(z64, 40);
      cdOffset = u64(z64, 48);
    }
    if (count > maxEntries) fail(`lists ${count} entries (limit ${maxEntries})`);
    if (cdOffset + cdSize > fileSize) fail('has a central directory outside the file (truncated?)');
    const cd = readAt(fd, cdOffset, cdSize, path);
    const entries: ZipEntry[] = [];
    const seen = new Set<string>();
    let pos = 0;
    for (let k = 0; k < count; k++) {
      if (pos + 46 > cd.length || cd.readUInt32LE(pos) !== SIG_CENTRAL)
        fail(`has a broken central directory entry ${k}`);
      const flags = cd.readUInt16LE(pos + 8);
      const method = cd.readUInt16LE(pos + 10);
      const crc = cd.readUInt32LE(pos + 16);
      let compressedSize = cd.readUInt32LE(pos + 20);
      let size = cd.readUInt32LE(pos + 24);
      const nameLength = cd.readUInt16LE(pos + 28);
      const extraLength = cd.readUInt16LE(pos + 30);
      const commentLength = cd.readUInt16LE(pos + 32);
      const externalAttributes = cd.readUInt32LE(pos + 38);
      let localHeaderOffset = cd.readUInt32LE(pos + 42);
      const rawName = cd.subarray(pos + 46, pos + 46 + nameLength).toString('utf8');
      const extra = cd.subarray(pos + 46 + nameLength, pos + 46 + nameLength + extraLength);
      pos += 46 + nameLength + extraLength + commentLength;

      // zip64 extra field: only the fields saturated in the header, in this order.
      for (let e = 0; e + 4 <= extra.length; ) {
        const id = extra.readUInt16LE(e);
        const len = extra.readUInt16LE(e + 2);
        if (id === 0x0001) {
          let f = e + 4;
          if (size === U32_MAX && f + 8 <= e + 4 + len) (size = u64(extra, f)), (f += 8);
          if (compressedSize === U32_MAX && f + 8 <= e + 4 + len)
            (compressedSize = u64(extra, f)), (f += 8);
          if (localHeaderOffset === U32_MAX && f + 8 <= e + 4 + len)
            localHeaderOffset = u64(extra, f);
        }
        e += 4 + len;
      }

      const where = `entry '${rawName}'`;
      const safe = safeArchivePath(rawName);
      if (safe === undefined || safe === '')
        fail(`${where} has a path that escapes the folder it would be extracted to`);
      // numpy.load keeps the last of two same-named members, a first-match reader the first:
      // an archive whose meaning depends on the reader is refused.
      if (seen.has(safe as string))
        fail(`${where} appears twice; an archive must not hold two entries with one name`);
      seen.add(safe as string);
      const unixType = (externalAttributes >>> 16) & 0o170000;
      if (unixType === 0o120000) fail(`${where} is a symbolic link; links are refused`);
      if (flags & 1) fail(`${where} is encrypted`);
      if (method !== 0 && method !== 8)
        fail(
          `${where} uses compression method ${method}; only stored (0) and deflate (8) are supported`,
        );
      if (size > maxEntry) fail(`${where} declares ${size} bytes, over the ${maxEntry}-byte limit`);
      if (method === 0 && compressedSize !== size)
        fail(`${where} is stored but its sizes differ (${compressedSize} vs ${size})`);
      if (size > exempt && size > maxRatio * Math.max(1, compressedSize)) {
        fail(
          `${where} would expand ${compressedSize} bytes to ${size} (ratio ${(size / Math.max(1, compressedSize)).toFixed(0)}:1, limit ${maxRatio}:1) — a zip bomb, not a numpy array`,
        );
      }
      if (localHeaderOffset + 30 + compressedSize > fileSize)
        fail(`${where} lies beyond the end of the file (truncated?)`);
      entries.push({
        name: safe as string,
        method: method as 0 | 8,
        compressedSize,
        size,
        crc32: crc,
        localHeaderOffset,
      });
    }
    return entries;
  } finally {
    closeSync(fd);
  }
}

/** Where an entry's data starts (after its local header). */
function dataOffset(path: string, entry: ZipEntry): number {
  const fd = openSync(path, 'r');
  try {
    const local = readAt(fd, entry.localHeaderOffset, 30, path);
    if (local.readUInt32LE(0) !== SIG_LOCAL) {
      throw new DatasetError(
        `Zip archive ${path}: entry '${entry.name}' has no local header at byte ${entry.localHeaderOffset}; the archive is corrupt.`,
      );
    }
    return entry.localHeaderOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
  } finally {
    closeSync(fd);
  }
}

/**
 * The uncompressed bytes of an entry as a stream of chunks. Inflation stops with an error
 * as soon as the output passes the declared size; the CRC-32 is checked after the last
 * chunk, so a consumer must pull until the stream ends (`ChunkReader.end()` does) for the
 * check to run — a reader that stops at the last byte it needs never sees a bit flip.
 */
export async function* zipEntryChunks(path: string, entry: ZipEntry): AsyncGenerator<Buffer> {
  const start = dataOffset(path, entry);
  const raw = createReadStream(path, {
    start,
    end: start + entry.compressedSize - 1,
    highWaterMark: 1 << 20,
  });
  const where = `Zip archive ${path}, entry '${entry.name}'`;
  const stream = entry.method === 8 ? raw.pipe(createInflateRaw({ chunkSize: 1 << 20 })) : raw;
  raw.on('error', (e) => stream.destroy(e));
  let produced = 0;
  let crc = 0;
  try {
    if (entry.compressedSize === 0) {
      if (entry.size !== 0)
        throw new DatasetError(
          `${where} is empty but declares ${entry.size} bytes; the archive is corrupt.`,
        );
      return;
    }
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      produced += chunk.length;
      if (produced > entry.size) {
        throw new DatasetError(
          `${where} inflates beyond its declared ${entry.size} bytes — a zip bomb or corrupt archive; refused.`,
        );
      }
      crc = crc32(chunk, crc);
      yield chunk;
    }
  } catch (error) {
    if (error instanceof DatasetError) throw error;
    throw new DatasetError(
      `${where} cannot be decompressed (${(error as Error).message}); the archive is corrupt or truncated.`,
    );
  } finally {
    raw.destroy();
    stream.destroy();
  }
  if (produced !== entry.size) {
    throw new DatasetError(
      `${where} holds ${produced} bytes but declares ${entry.size}; the archive is corrupt or truncated.`,
    );
  }
  if (crc >>> 0 !== entry.crc32 >>> 0) {
    throw new DatasetError(
      `${where} fails its CRC-32 check; the archive is corrupt — download it again.`,
    );
  }
}

/** A whole (small) entry in memory. */
export async function readZipEntry(
  path: string,
  entry: ZipEntry,
  maxBytes = 256 * 2 ** 20,
): Promise<Buffer> {
  if (entry.size > maxBytes) {
    throw new DatasetError(
      `Zip archive ${path}, entry '${entry.name}' is ${entry.size} bytes, more than the ${maxBytes} this reader holds in memory.`,
    );
  }
  const parts: Buffer[] = [];
  for await (const chunk of zipEntryChunks(path, entry)) parts.push(chunk);
  return Buffer.concat(parts);
}

/**
 * A whole (small) entry in memory, read synchronously (pretrained weights load inside
 * synchronous model code). Same checks as `zipEntryChunks`: declared size, then CRC-32.
 */
export function readZipEntrySync(path: string, entry: ZipEntry, maxBytes = 2 ** 31): Buffer {
  const where = `Zip archive ${path}, entry '${entry.name}'`;
  if (entry.size > maxBytes) {
    throw new DatasetError(
      `${where} is ${entry.size} bytes, more than the ${maxBytes} this reader holds in memory.`,
    );
  }
  const start = dataOffset(path, entry);
  const fd = openSync(path, 'r');
  let raw: Buffer;
  try {
    raw = readAt(fd, start, entry.compressedSize, path);
  } finally {
    closeSync(fd);
  }
  let out: Buffer;
  if (entry.method === 0) out = raw;
  else {
    try {
      // One byte more than declared, so that an entry inflating beyond its size is caught.
      out = inflateRawSync(raw, { maxOutputLength: Math.max(1, entry.size + 1) });
    } catch (error) {
      throw new DatasetError(
        `${where} cannot be decompressed (${(error as Error).message}); the archive is corrupt, truncated or a zip bomb.`,
      );
    }
  }
  if (out.length !== entry.size) {
    throw new DatasetError(
      `${where} holds ${out.length} bytes but declares ${entry.size}; the archive is corrupt or truncated.`,
    );
  }
  if (crc32(out) >>> 0 !== entry.crc32 >>> 0) {
    throw new DatasetError(
      `${where} fails its CRC-32 check; the archive is corrupt — download it again.`,
    );
  }
  return out;
}
