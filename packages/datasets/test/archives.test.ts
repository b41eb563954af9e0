import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { npyIntegers, parseNpyHeader } from '../src/formats/npy.js';
import { readTar } from '../src/formats/tar.js';
import { listZip, readZipEntry } from '../src/formats/zip.js';
import { int64Bytes, npy, tar, zip } from './archive-writers.js';
import { tempDir } from './helpers.js';

async function entriesOf(path: string): Promise<[string, string][]> {
  const out: [string, string][] = [];
  for await (const e of readTar(path))
    out.push([e.name, e.type === 'file' ? (await e.read()).toString() : '<dir>']);
  return out;
}

describe('tar reader', () => {
  it('reads ustar and pax long names from tar and tar.gz', async () => {
    const dir = tempDir('tar');
    const long = `deep/${'x'.repeat(120)}/file.txt`;
    const bytes = tar([
      { name: 'top/', type: '5' },
      { name: 'top/a.txt', data: Buffer.from('alpha') },
      { name: long, data: Buffer.from('beta'), pax: true },
      { name: 'top/empty', data: new Uint8Array(0) },
    ]);
    writeFileSync(join(dir, 'a.tar'), bytes);
    writeFileSync(join(dir, 'a.tar.gz'), gzipSync(bytes));
    const expected = [
      ['top', '<dir>'],
      ['top/a.txt', 'alpha'],
      [long, 'beta'],
      ['top/empty', ''],
    ];
    expect(await entriesOf(join(dir, 'a.tar'))).toEqual(expected);
    expect(await entriesOf(join(dir, 'a.tar.gz'))).toEqual(expected);
  });

  it('refuses entries escaping the folder, links, and truncated archives', async () => {
    const dir = tempDir('tar-evil');
    const cases: [string, Buffer, RegExp][] = [
      [
        'dotdot.tar',
        tar([
          { name: 'ok.txt', data: Buffer.from('1') },
          { name: '../evil', data: Buffer.from('x') },
        ]),
        /entry '\.\.\/evil', whose path escapes the folder/,
      ],
      [
        'abs.tar',
        tar([{ name: '/etc/evil', data: Buffer.from('x') }]),
        /entry '\/etc\/evil', whose path escapes/,
      ],
      [
        'paxdotdot.tar',
        tar([{ name: 'a/../../evil', data: Buffer.from('x'), pax: true }]),
        /escapes the folder/,
      ],
      [
        'sym.tar',
        tar([{ name: 'link', type: '2', linkName: '/etc/passwd' }]),
        /entry 'link', a symbolic link; links are refused/,
      ],
      ['hard.tar', tar([{ name: 'link', type: '1', linkName: 'x' }]), /a hard link/],
    ];
    for (const [name, bytes, error] of cases) {
      writeFileSync(join(dir, name), gzipSync(bytes));
      await expect(entriesOf(join(dir, name))).rejects.toThrow(error);
    }
    const whole = tar([{ name: 'a.bin', data: new Uint8Array(5000) }]);
    writeFileSync(join(dir, 'cut.tar'), whole.subarray(0, 2000));
    await expect(entriesOf(join(dir, 'cut.tar'))).rejects.toThrow(
      /cut\.tar ends in the middle of the entry that starts at byte 0.*truncated/,
    );
    writeFileSync(join(dir, 'cut.tar.gz'), gzipSync(whole).subarray(0, 30));
    await expect(entriesOf(join(dir, 'cut.tar.gz'))).rejects.toThrow(
      /cut\.tar\.gz (is not valid gzip or is truncated|ends in the middle)/,
    );
  });
});

describe('zip and npy readers', () => {
  it('reads stored and deflated npy entries', async () => {
    const dir = tempDir('zip');
    const data = Uint8Array.from({ length: 2 * 3072 }, (_, i) => i % 253);
    const file = join(dir, 'b.npz');
    writeFileSync(
      file,
      zip([
        { name: 'data.npy', data: npy('|u1', [2, 3072], data) },
        { name: 'labels.npy', data: npy('<i8', [2], int64Bytes([7, 1000])), deflate: true },
      ]),
    );
    const entries = listZip(file);
    expect(entries.map((e) => [e.name, e.method])).toEqual([
      ['data.npy', 0],
      ['labels.npy', 8],
    ]);
    const labels = await readZipEntry(file, entries[1]);
    const header = parseNpyHeader(labels, 'labels');
    expect(header.shape).toEqual([2]);
    expect(npyIntegers(header, labels.subarray(header.dataOffset), 'labels')).toEqual([7, 1000]);
    const raw = await readZipEntry(file, entries[0]);
    const h2 = parseNpyHeader(raw, 'data');
    expect(h2.shape).toEqual([2, 3072]);
    expect(h2.dataOffset % 64).toBe(0);
    expect(Buffer.from(raw.subarray(h2.dataOffset)).equals(Buffer.from(data))).toBe(true);
  });

  it('refuses zip bombs, lying sizes and escaping names', async () => {
    const dir = tempDir('zip-evil');
    const zeros = new Uint8Array(8 << 20); // 8 MiB of zeros deflates ~1000:1
    writeFileSync(join(dir, 'bomb.npz'), zip([{ name: 'data.npy', data: zeros, deflate: true }]));
    expect(() => listZip(join(dir, 'bomb.npz'))).toThrow(
      /entry 'data\.npy' would expand \d+ bytes to 8388608 \(ratio \d+:1, limit 200:1\) — a zip bomb/,
    );
    // Declares 100 bytes but inflates to 64 KiB: cut off while streaming.
    writeFileSync(
      join(dir, 'liar.npz'),
      zip([{ name: 'x.npy', data: new Uint8Array(65536), deflate: true, declaredSize: 100 }]),
    );
    const [liar] = listZip(join(dir, 'liar.npz'));
    await expect(readZipEntry(join(dir, 'liar.npz'), liar)).rejects.toThrow(
      /inflates beyond its declared 100 bytes/,
    );
    writeFileSync(
      join(dir, 'slip.npz'),
      zip([{ name: '../../evil.npy', data: new Uint8Array(4) }]),
    );
    expect(() => listZip(join(dir, 'slip.npz'))).toThrow(
      /entry '\.\.\/\.\.\/evil\.npy' has a path that escapes/,
    );
    writeFileSync(
      join(dir, 'cut.npz'),
      zip([{ name: 'a.npy', data: new Uint8Array(100) }]).subarray(0, 60),
    );
    expect(() => listZip(join(dir, 'cut.npz'))).toThrow(/no end-of-central-directory record/);
  });
});

describe('duplicate entry names (issue 16 item 5)', () => {
  it('are refused by the zip reader, whichever copy a reader would pick', () => {
    const dir = tempDir('zip-dup');
    const file = join(dir, 'dup.npz');
    writeFileSync(
      file,
      zip([
        { name: 'labels.npy', data: npy('<i8', [1], int64Bytes([1])) },
        { name: 'data.npy', data: npy('|u1', [1], new Uint8Array(1)) },
        { name: './labels.npy', data: npy('<i8', [1], int64Bytes([2])) },
      ]),
    );
    expect(() => listZip(file)).toThrow(
      `Zip archive ${file}: entry './labels.npy' appears twice; an archive must not hold two entries with one name; it is corrupt or unsafe and was refused.`,
    );
  });

  it('are refused by the tar reader (a folder listed twice is fine)', async () => {
    const dir = tempDir('tar-dup');
    const file = join(dir, 'dup.tar');
    writeFileSync(
      file,
      tar([
        { name: 'top/', type: '5' },
        { name: 'top/', type: '5' },
        { name: 'top/a.txt', data: Buffer.from('one') },
        { name: 'top/b.txt', data: Buffer.from('two') },
        { name: 'top//a.txt', data: Buffer.from('three') },
      ]),
    );
    await expect(entriesOf(file)).rejects.toThrow(
      /the entry header at byte 3072 is entry 'top\/\/a\.txt' again; an archive must not hold two entries with one name/,
    );
  });
});
