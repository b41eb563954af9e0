/**
 * Loading one of this package's compiled modules (build/Release/<file>): the one rule both
 * loaders (`loadNative`, `loadNativeMemory`) follow. Never throws; says why a module is unusable.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export type AddonLoad<T> = { ok: true; addon: T } | { ok: false; reason: string };

/** MASKCON_NATIVE=0 switches every native module off (checked on every call, not cached). */
export const nativeDisabled = (): boolean => process.env.MASKCON_NATIVE === '0';
export const DISABLED_REASON = 'disabled by MASKCON_NATIVE=0';

const packageRoot = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

export function requireAddon<T>(file: string): AddonLoad<T> {
  const addonPath = path.join(packageRoot, 'build', 'Release', file);
  if (!existsSync(addonPath)) {
    const reasonFile = path.join(packageRoot, 'build', 'unavailable.txt');
    const reason = existsSync(reasonFile)
      ? readFileSync(reasonFile, 'utf8').trim()
      : 'the addon was not built (run `pnpm install`, or `pnpm --filter @maskcon/native run install`)';
    return { ok: false, reason: `@maskcon/native: ${reason}` };
  }
  try {
    return { ok: true, addon: createRequire(import.meta.url)(addonPath) as T };
  } catch (e) {
    const msg = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    return { ok: false, reason: `@maskcon/native: loading ${addonPath} failed: ${msg}` };
  }
}
