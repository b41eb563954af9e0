import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { readMat5, readMat5File, type MatValue } from '../src/formats/mat5.js';
import { tempDir } from './helpers.js';
import { writeFile } from './image-fixtures.js';
import { MatWriter, type MatIn } from './mat5-writer.js';

const annotations: MatIn = {
  kind: 'struct',
  dims: [1, 2],
  fields: ['bbox_x1', 'class', 'fname'],
  elements: [
    {
      bbox_x1: { kind: 'uint8', dims: [1, 1], values: [39] },
      class: { kind: 'double', dims: [1, 1], values: [14] },
      fname: { kind: 'char', text: '00001.jpg' },
    },
    {
      bbox_x1: { kind: 'double', dims: [1, 1], values: [3.5] },
      class: { kind: 'double', dims: [1, 1], values: [196] },
      fname: { kind: 'char', text: '00002.jpg' },
    },
  ],
};
const classNames: MatIn = {
  kind: 'cell',
  dims: [1, 3],
  cells: ['AM General Hummer SUV 2000', 'Acura RL Sedan 2012', 'ab'].map((text) => ({
    kind: 'char',
    text,
  })),
};

function expectCarsContent(vars: Map<string, MatValue>): void {
  expect([...vars.keys()]).toEqual(['annotations', 'class_names', 'x']);
  const a = vars.get('annotations')!;
  if (a.kind !== 'struct') throw new Error('not a struct');
  expect(a.dims).toEqual([1, 2]);
  expect(a.fieldNames).toEqual(['bbox_x1', 'class', 'fname']);
  const field = (i: number, f: string) => a.elements[i].get(f)!;
  expect(field(0, 'bbox_x1')).toMatchObject({
    kind: 'numeric',
    className: 'uint8',
    data: new Float64Array([39]),
  });
  expect(field(1, 'bbox_x1')).toMatchObject({
    kind: 'numeric',
    className: 'double',
    data: new Float64Array([3.5]),
  });
  expect(field(1, 'class')).toMatchObject({ data: new Float64Array([196]) });
  expect(field(1, 'fname')).toMatchObject({ kind: 'char', rows: ['00002.jpg'] });
  const c = vars.get('class_names')!;
  if (c.kind !== 'cell') throw new Error('not a cell');
  // 'ab' is a 4-byte uint16 payload: written as a small data element.
  expect(c.cells.map((x) => (x.kind === 'char' ? x.rows[0] : '?'))).toEqual([
    'AM General Hummer SUV 2000',
    'Acura RL Sedan 2012',
    'ab',
  ]);
  expect(vars.get('x')).toMatchObject({
    kind: 'numeric',
    dims: [2, 3],
    data: new Float64Array([1, 2, 3, 4, 5, 6]),
  });
}

const vars = {
  annotations,
  class_names: classNames,
  x: { kind: 'double', dims: [2, 3], values: [1, 2, 3, 4, 5, 6] } as MatIn,
};

describe('MAT v5 reader', () => {
  it('reads structs, cells, chars and numbers, uncompressed, compressed and big-endian', () => {
    expectCarsContent(readMat5(new MatWriter().file(vars), 'plain.mat'));
    expectCarsContent(readMat5(new MatWriter().file(vars, { compress: true }), 'zipped.mat'));
    expectCarsContent(readMat5(new MatWriter(false).file(vars), 'big-endian.mat'));
  });

  it('reads a file from disk and names it in errors', () => {
    const dir = tempDir('mat5');
    const bytes = new MatWriter().file(vars, { compress: true });
    writeFile(join(dir, 'ok.mat'), bytes);
    expectCarsContent(readMat5File(join(dir, 'ok.mat')));
    writeFile(join(dir, 'cut.mat'), bytes.subarray(0, bytes.length - 40));
    expect(() => readMat5File(join(dir, 'cut.mat'))).toThrow(
      /MAT file .*cut\.mat is not a readable MATLAB v5 file/,
    );
    expect(() => readMat5File(join(dir, 'ok.mat'), { maxFileBytes: 100 })).toThrow(
      /more than the 100-byte limit/,
    );
    expect(() => readMat5File(join(dir, 'missing.mat'))).toThrow(/missing\.mat does not exist/);
  });

  it('refuses truncated plain data, bad headers, v7.3 files and compression bombs', () => {
    const plain = new MatWriter().file(vars);
    expect(() => readMat5(plain.subarray(0, 300), 'cut.mat')).toThrow(
      /claims \d+ bytes but only \d+ remain/,
    );
    const badEndian = Buffer.from(plain);
    badEndian.write('XX', 126, 'latin1');
    expect(() => readMat5(badEndian, 'bad.mat')).toThrow(/endian indicator is "XX"/);
    const v73 = Buffer.alloc(512);
    v73.write('MATLAB 7.3 MAT-file', 0, 'latin1');
    expect(() => readMat5(v73, 'v73.mat')).toThrow(/v7\.3 \(HDF5\) file/);

    // A compressed element whose content inflates to 2 MiB of zeros, read with a 1 MiB limit.
    const bomb = deflateSync(Buffer.alloc(2 * 1024 * 1024));
    const tag = Buffer.alloc(8);
    tag.writeUInt32LE(15, 0);
    tag.writeUInt32LE(bomb.length, 4);
    const header = plain.subarray(0, 128);
    expect(() =>
      readMat5(Buffer.concat([header, tag, bomb]), 'bomb.mat', {
        maxDecompressedBytes: 1024 * 1024,
      }),
    ).toThrow(/inflates beyond 1048576 bytes/);
  });
});
