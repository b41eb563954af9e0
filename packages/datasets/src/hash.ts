import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { DatasetError } from './errors.js';
import type { DatasetSource, ProgressListener } from './source.js';

export interface HashedSourceFile {
  readonly name: string;
  readonly path: string;
  readonly bytes: number;
  readonly sha256: string;
}

/** Stream-hash every source file (sha256), so multi-GB inputs never sit in memory. */
export async function hashSourceFiles(
  source: DatasetSource,
  onProgress?: ProgressListener,
): Promise<HashedSourceFile[]> {
  const sizes = source.sourceFiles.map((file) => {
    try {
      const stat = statSync(file.path);
      if (!stat.isFile()) {
        throw new DatasetError(
          `Source file ${file.path} of dataset ${source.name} is not a regular file. ${source.missingFileHint ?? ''}`.trim(),
        );
      }
      return stat.size;
    } catch (error) {
      if (error instanceof DatasetError) throw error;
      throw new DatasetError(
        `Source file ${file.path} of dataset ${source.name} does not exist or cannot be read (${(error as Error).message}). ${source.missingFileHint ?? ''}`.trim(),
      );
    }
  });
  const total = sizes.reduce((a, b) => a + b, 0);
  let done = 0;
  const hashed: HashedSourceFile[] = [];
  for (const [i, file] of source.sourceFiles.entries()) {
    const hash = createHash('sha256');
    try {
      for await (const chunk of createReadStream(file.path)) {
        hash.update(chunk as Buffer);
        done += (chunk as Buffer).length;
        onProgress?.({ phase: 'hash', done, total, unit: 'bytes' });
      }
    } catch (error) {
      throw new DatasetError(
        `Could not read source file ${file.path} of dataset ${source.name}: ${(error as Error).message}.`,
      );
    }
    hashed.push({ name: file.name, path: file.path, bytes: sizes[i], sha256: hash.digest('hex') });
  }
  return hashed;
}
