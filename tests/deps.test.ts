/**
 * Each package declares exactly what its shipped sources import. The imports are read with
 * TypeScript's own pre-processor (`ts.preProcessFile`: static, type-only, re-export and
 * literal dynamic imports) over the files `tsconfig.build.json` compiles — the files that end
 * up in dist/. A package that imports something it does not declare breaks for whoever
 * installs it; a declared @maskcon/* package it never imports drags in a whole subtree (as
 * `@maskcon/model` → `@maskcon/augment` did for `Rng`).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const repo = resolve(import.meta.dirname, '..');
const packagesDir = join(repo, 'packages');
const PACKAGES = readdirSync(packagesDir, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();

interface Manifest {
  name: string;
  files?: string[];
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

/** `@scope/name/sub` → `@scope/name`, `name/sub` → `name`; undefined for relative and builtins. */
function packageOf(specifier: string): string | undefined {
  if (specifier.startsWith('.') || specifier.startsWith('/') || specifier.startsWith('node:'))
    return undefined;
  if (builtinModules.includes(specifier.split('/')[0] ?? '')) return undefined;
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** The shipped source files of a package: what its tsconfig.build.json compiles. */
function shippedSources(dir: string): string[] {
  const configPath = join(dir, 'tsconfig.build.json');
  const { config, error } = ts.readConfigFile(configPath, ts.sys.readFile);
  if (error)
    throw new Error(`${configPath}: ${ts.flattenDiagnosticMessageText(error.messageText, '\n')}`);
  return ts.parseJsonConfigFileContent(config, ts.sys, dir).fileNames;
}

interface Usage {
  /** Package name → the files importing it. */
  imported: Map<string, string[]>;
  /**
   * The text of every shipped file, for packages loaded through a computed `import(name)` or
   * used by a shipped build file (native's binding.gyp includes node-addon-api's headers).
   */
  text: string;
}

function usage(dir: string, manifest: Manifest): Usage {
  const imported = new Map<string, string[]>();
  let text = '';
  for (const entry of manifest.files ?? []) {
    const file = join(dir, entry);
    if (!/^(README|CHANGELOG|LICENSE)/.test(entry) && existsSync(file) && statSync(file).isFile())
      text += readFileSync(file, 'utf8');
  }
  for (const file of shippedSources(dir)) {
    const source = readFileSync(file, 'utf8');
    text += source;
    for (const { fileName } of ts.preProcessFile(source, true, true).importedFiles) {
      const name = packageOf(fileName);
      if (!name) continue;
      const files = imported.get(name) ?? [];
      files.push(relative(repo, file));
      imported.set(name, files);
    }
  }
  return { imported, text };
}

function declared(m: Manifest): Set<string> {
  return new Set([
    ...Object.keys(m.dependencies ?? {}),
    ...Object.keys(m.optionalDependencies ?? {}),
    ...Object.keys(m.peerDependencies ?? {}),
  ]);
}

describe('package dependencies', () => {
  it('packageOf names the package of a specifier and skips relative paths and builtins', () => {
    expect(packageOf('@maskcon/random')).toBe('@maskcon/random');
    expect(packageOf('@tensorflow/tfjs-core/dist/ops')).toBe('@tensorflow/tfjs-core');
    expect(packageOf('hono/streaming')).toBe('hono');
    expect(packageOf('./rng.js')).toBeUndefined();
    expect(packageOf('node:fs')).toBeUndefined();
    expect(packageOf('worker_threads')).toBeUndefined();
  });

  it('finds static, type-only, re-exported and literal dynamic imports', () => {
    const source = [
      "import a from 'alpha';",
      "import type { B } from '@beta/core/types';",
      "export { c } from 'gamma';",
      "const d = await import('delta');",
      "import { e } from './local.js';",
    ].join('\n');
    const names = ts
      .preProcessFile(source, true, true)
      .importedFiles.map((f) => packageOf(f.fileName))
      .filter((n) => n !== undefined);
    expect(names).toEqual(['alpha', '@beta/core', 'gamma', 'delta']);
  });

  for (const pkg of PACKAGES) {
    it(`${pkg}: every package its sources import is declared, every declared one is used`, () => {
      const dir = join(packagesDir, pkg);
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;
      const { imported, text } = usage(dir, manifest);
      const deps = declared(manifest);

      const undeclared = [...imported]
        .filter(([name]) => !deps.has(name) && name !== manifest.name)
        .map(([name, files]) => `${name} (imported by ${files.join(', ')})`);
      expect(
        undeclared,
        `${manifest.name} imports packages its package.json does not declare`,
      ).toEqual([]);

      // A @maskcon package must be imported. A third-party one may instead be loaded through a
      // computed `import(name)` (so the package type-checks without it, e.g. sharp, tfjs-node)
      // or used by a shipped build file: then its name appears quoted in a shipped file.
      const unused = [...deps].filter(
        (name) =>
          !imported.has(name) &&
          (name.startsWith('@maskcon/') ||
            !["'", '"', '`'].some((q) => text.includes(`${q}${name}${q}`))),
      );
      expect(unused, `${manifest.name} declares packages its sources never use`).toEqual([]);
    });
  }

  it('@maskcon/random has no dependencies and model does not depend on augment', () => {
    const manifest = (pkg: string) =>
      JSON.parse(readFileSync(join(packagesDir, pkg, 'package.json'), 'utf8')) as Manifest;
    expect(declared(manifest('random'))).toEqual(new Set());
    expect(declared(manifest('model')).has('@maskcon/augment')).toBe(false);
  });
});
