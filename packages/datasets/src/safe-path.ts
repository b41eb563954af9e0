import { existsSync, realpathSync } from 'node:fs';
import { isAbsolute, join, resolve, sep } from 'node:path';
import { DatasetError } from './errors.js';

export interface DatasetRootOptions {
  /**
   * Follow symlinks inside the root wherever they lead (`--allow-symlinks`): for image
   * folders linked in from another disk. Metadata paths still may not be absolute or use `..`.
   */
  readonly allowSymlinks?: boolean;
}

/**
 * The folder a dataset's metadata paths are relative to. Metadata files are data from the
 * internet: a path in them may only name a file inside this folder — no absolute paths, no
 * `..` segments, and (unless the user allows them) no symlinks that lead outside it.
 */
export class DatasetRoot {
  /** The root with symlinks resolved (paths are checked against this). */
  readonly real: string;
  private readonly allowSymlinks: boolean;

  constructor(
    readonly path: string,
    options: DatasetRootOptions = {},
  ) {
    const full = resolve(path);
    this.real = existsSync(full) ? realpathSync(full) : full;
    this.allowSymlinks = options.allowSymlinks ?? false;
  }

  /**
   * The absolute path of `relative` inside the root. `where` names the metadata entry
   * (e.g. `Ebay_train.txt line 17`) for the error message.
   */
  resolve(relative: string, where: string): string {
    const refuse = (why: string): never => {
      throw new DatasetError(
        `${where} names the image path ${JSON.stringify(relative)}, which ${why}; metadata paths must stay inside the dataset root ${this.real}. The metadata file is corrupt or hostile — replace it with the original.`,
      );
    };
    if (relative.length === 0) refuse('is empty');
    if (relative.includes('\0')) refuse('contains a NUL byte');
    if (isAbsolute(relative) || /^[a-zA-Z]:/.test(relative) || relative.startsWith('\\'))
      refuse('is absolute');
    if (relative.split(/[\\/]/).includes('..')) refuse('climbs out with ..');
    const full = join(this.real, relative);
    if (existsSync(full)) {
      const real = realpathSync(full);
      if (!real.startsWith(this.real + sep) && !this.allowSymlinks) {
        throw new DatasetError(
          `${where} names the image path ${JSON.stringify(relative)}, which leads through a symlink to ${real}, outside the dataset root ${this.real}. If you linked that folder in on purpose (images on another disk), pass --allow-symlinks; otherwise replace the dataset folder with the original.`,
        );
      }
      return real;
    }
    return full;
  }
}
