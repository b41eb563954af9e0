/**
 * What a JPEG dataset's index was built from, image by image: each source file's size,
 * modification time (ns) and sha256, kept in the index's `source_images` table. A rebuild
 * compares the files on disk with it, so a repaired, replaced or deleted image (or a
 * different `--root`) is never "up to date", and images whose bytes did not change keep the
 * pixels decoded last time instead of being decoded again.
 *
 * Checking is cheap: a file whose size and mtime match the table is taken as unchanged without
 * reading it; only new files and files whose size or mtime moved are hashed.
 */
import { statSync } from 'node:fs';
import { hashFile } from './download.js';
import { DatasetError } from './errors.js';
import type { ProgressListener } from './source.js';
import type { Split } from './types.js';

/** One image file as a build saw it. `bytes` is −1 (and the rest empty) when it was missing. */
export interface ImageFileState {
  readonly path: string;
  readonly bytes: number;
  readonly mtimeNs: string;
  readonly sha256: string;
}

/** A row of `source_images`: the state plus where its pixels went (null: left out or missing). */
export interface StoredImageFile extends ImageFileState {
  readonly split: Split | null;
  readonly idx: number | null;
}

/** How the image files differ from those an index was built from. */
export interface ImageFileChanges {
  /** Same path, different bytes (or a file that was missing before and is back). */
  readonly changed: readonly string[];
  /** Listed now, not at the last build. */
  readonly added: readonly string[];
  /** Deleted since the last build, or no longer listed by the metadata. */
  readonly removed: readonly string[];
  /** Size or mtime moved but the bytes are the same (a copy, a touch): not a change. */
  readonly touched: number;
  readonly unchanged: number;
}

export const MISSING = -1;

/**
 * Stat every listed file and hash those the previous build does not vouch for. Returns the
 * states to record and, when there was a previous build, what changed since.
 */
export async function surveyImageFiles(
  paths: readonly string[],
  previous: ReadonlyMap<string, StoredImageFile> | undefined,
  onProgress?: ProgressListener,
): Promise<{ states: ImageFileState[]; changes: ImageFileChanges | undefined }> {
  const states: ImageFileState[] = [];
  const changed: string[] = [];
  const added: string[] = [];
  const removed: string[] = [];
  let touched = 0;
  let unchanged = 0;
  let done = 0;
  const listed = new Set<string>();
  for (const path of paths) {
    if (listed.has(path)) continue; // the same file under two metadata entries
    listed.add(path);
    const before = previous?.get(path);
    const state = await fileState(path, before);
    states.push(state);
    done += 1;
    if (done % 256 === 0)
      onProgress?.({ phase: 'images', done, total: paths.length, unit: 'images' });
    if (!previous) continue;
    if (!before) added.push(path);
    else if (state.sha256 === before.sha256 && state.bytes === before.bytes) {
      if (state.mtimeNs === before.mtimeNs) unchanged += 1;
      else touched += 1;
    } else if (state.bytes === MISSING) removed.push(path);
    else changed.push(path);
  }
  onProgress?.({ phase: 'images', done, total: paths.length, unit: 'images' });
  if (previous) for (const path of previous.keys()) if (!listed.has(path)) removed.push(path);
  return {
    states,
    changes: previous ? { changed, added, removed, touched, unchanged } : undefined,
  };
}

async function fileState(
  path: string,
  before: StoredImageFile | undefined,
): Promise<ImageFileState> {
  let stat: { size: bigint; mtimeNs: bigint; isFile(): boolean };
  try {
    stat = statSync(path, { bigint: true });
  } catch {
    return { path, bytes: MISSING, mtimeNs: '', sha256: '' };
  }
  if (!stat.isFile()) return { path, bytes: MISSING, mtimeNs: '', sha256: '' };
  const bytes = Number(stat.size);
  const mtimeNs = stat.mtimeNs.toString();
  if (before && before.bytes === bytes && before.mtimeNs === mtimeNs) return before;
  return { path, bytes, mtimeNs, sha256: await sha256OfFile(path) };
}

async function sha256OfFile(path: string): Promise<string> {
  try {
    return await hashFile(path, 'sha256');
  } catch (error) {
    throw new DatasetError(`Could not read image ${path}: ${(error as Error).message}.`);
  }
}

/** True when nothing that matters changed (touched files with the same bytes do not count). */
export function nothingChanged(changes: ImageFileChanges): boolean {
  return changes.changed.length + changes.added.length + changes.removed.length === 0;
}

/** "3 images changed, 1 removed since the last build (e.g. …)", up to three example paths. */
export function describeImageChanges(changes: ImageFileChanges): string {
  const counts = [
    [changes.changed.length, 'changed'],
    [changes.added.length, 'added'],
    [changes.removed.length, 'removed'],
    [changes.touched, 'touched with the same bytes'],
  ] as const;
  const parts = counts
    .filter(([n]) => n > 0)
    .map(([n, what], i) => (i === 0 ? `${n} image${n === 1 ? '' : 's'} ${what}` : `${n} ${what}`));
  if (parts.length === 0) return 'no image changed since the last build';
  const examples = [...changes.changed, ...changes.added, ...changes.removed].slice(0, 3);
  return `${parts.join(', ')} since the last build${examples.length ? ` (e.g. ${examples.join(', ')})` : ''}`;
}
