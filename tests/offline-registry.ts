/**
 * An offline package-metadata mirror for pnpm, derived from this repository's pnpm-lock.yaml.
 *
 * `pnpm install --offline` takes package contents from the local store (warm after the
 * workspace install) but resolves versions from cached registry metadata, which a machine that
 * installed from the lockfile never downloaded. The lockfile holds what resolution needs for
 * every package the workspace uses (version, integrity, dependencies, peer dependencies,
 * platform), so this writes that as registry documents into a private `cache-dir`; a scratch
 * project depending on the packed tarballs then installs with no network at all.
 *
 * The lockfile is parsed by hand: pnpm writes it in one fixed layout (lockfileVersion 9.0) and
 * only the `packages:` and `snapshots:` sections are read; no YAML library is a dependency here.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

interface VersionDoc {
  name: string;
  version: string;
  dist: { integrity: string; tarball: string };
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional: boolean }>;
  cpu?: string[];
  os?: string[];
  libc?: string[];
}

/** `'@scope/name@1.2.3(peer@1)'` or `name@1.2.3` → [name, version] (peer suffix dropped). */
function splitKey(raw: string): [string, string] {
  const key = raw.replace(/^'|'$/g, '').replace(/\(.*$/, '');
  const at = key.lastIndexOf('@');
  if (at <= 0) throw new Error(`pnpm-lock.yaml: unexpected package key ${raw}.`);
  return [key.slice(0, at), key.slice(at + 1)];
}

const unquote = (s: string): string => s.trim().replace(/^'|'$/g, '');

/** `[a, b]` → ['a', 'b']. */
function flowList(s: string): string[] {
  return s
    .replace(/^\[|\]$/g, '')
    .split(',')
    .map(unquote)
    .filter((x) => x !== '');
}

/** A snapshot dependency value as a registry range: `4.22.0(peer)` → `4.22.0`; an alias
 * `string-width@4.2.3` → `npm:string-width@4.2.3`. */
function depRange(value: string): string {
  const v = unquote(value).replace(/\(.*$/, '');
  return /^\d/.test(v) ? v : `npm:${v}`;
}

export function writeOfflineMetadata(lockfile: string, cacheDir: string): number {
  const lines = readFileSync(lockfile, 'utf8').split('\n');
  if (!/^lockfileVersion: '9\./.test(lines[0] ?? '')) {
    throw new Error(`${lockfile}: expected lockfileVersion 9.x, got "${lines[0]}".`);
  }
  const docs = new Map<string, Map<string, VersionDoc>>();
  let section = '';
  let current: VersionDoc | undefined;
  let field = '';
  let peerMetaName = '';
  for (const line of lines) {
    if (/^\S/.test(line)) {
      section = line.replace(/:.*$/, '');
      current = undefined;
      continue;
    }
    if (section !== 'packages' && section !== 'snapshots') continue;
    const m2 = /^ {2}(\S.*):$/.exec(line);
    if (m2?.[1]) {
      const [name, version] = splitKey(m2[1]);
      let versions = docs.get(name);
      if (!versions) docs.set(name, (versions = new Map()));
      current = versions.get(version);
      if (!current) {
        if (section === 'snapshots')
          throw new Error(`pnpm-lock.yaml: snapshot ${m2[1]} has no package.`);
        current = { name, version, dist: { integrity: '', tarball: '' } };
        versions.set(version, current);
      }
      field = '';
      continue;
    }
    if (!current) continue;
    const m4 = /^ {4}(\w+):\s*(.*)$/.exec(line);
    if (m4?.[1] !== undefined) {
      const [, key, value = ''] = m4;
      field = key;
      if (key === 'resolution') {
        const integrity = /integrity: ([^,}\s]+)/.exec(value)?.[1];
        if (!integrity)
          throw new Error(`pnpm-lock.yaml: ${current.name}@${current.version} has no integrity.`);
        const base = current.name.replace(/^@[^/]+\//, '');
        current.dist = {
          integrity,
          tarball: `https://registry.npmjs.org/${current.name}/-/${base}-${current.version}.tgz`,
        };
      } else if (key === 'cpu' || key === 'os' || key === 'libc') {
        current[key] = flowList(value);
      }
      continue;
    }
    const m6 = /^ {6}('[^']+'|[^:\s]+):\s*(.*)$/.exec(line);
    if (m6?.[1] !== undefined) {
      const name = unquote(m6[1]);
      const value = m6[2] ?? '';
      if (field === 'dependencies' || field === 'optionalDependencies') {
        current[field] ??= {};
        (current[field] as Record<string, string>)[name] ??= depRange(value);
      } else if (field === 'peerDependencies') {
        current.peerDependencies ??= {};
        current.peerDependencies[name] = unquote(value);
      } else if (field === 'peerDependenciesMeta') {
        peerMetaName = name;
      }
      continue;
    }
    if (field === 'peerDependenciesMeta' && /^ {8}optional: true$/.test(line) && peerMetaName) {
      current.peerDependenciesMeta ??= {};
      current.peerDependenciesMeta[peerMetaName] = { optional: true };
    }
  }

  // pnpm reads abbreviated documents, and full ones for optional dependencies (platform fields).
  for (const kind of ['metadata-v1.3', 'metadata-full-v1.3']) {
    const root = join(cacheDir, kind, 'registry.npmjs.org');
    for (const [name, versions] of docs) {
      const latest = [...versions.keys()].at(-1) ?? '';
      const file = join(root, `${name}.json`);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(
        file,
        JSON.stringify({
          name,
          'dist-tags': { latest },
          versions: Object.fromEntries(versions),
          cachedAt: Date.now(),
        }),
      );
    }
  }
  return docs.size;
}
