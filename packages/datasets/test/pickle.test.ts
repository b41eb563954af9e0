import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  isNdArray,
  ndarrayToNumbers,
  PyDict,
  readLazy,
  unpickle,
  unpickleFile,
  type NdArray,
} from '../src/formats/pickle.js';
import { pickle, py } from './archive-writers.js';
import { tempDir } from './helpers.js';

const pixels = Uint8Array.from({ length: 2 * 3072 }, (_, i) => (i * 7) & 0xff);
const batch = py.dict([
  ['batch_label', py.str('training batch 1 of 1')],
  ['labels', py.ints([3, 0, 65535, 70000])],
  ['data', py.u8array([2, 3072], pixels)],
  ['filenames', py.strs(['a_s_000.png', 'b_s_001.png'])],
]);

describe('restricted unpickler', () => {
  for (const style of ['py2', 'py3'] as const) {
    it(`reads a CIFAR-style batch dict (${style === 'py2' ? 'Python 2 cPickle protocol 2' : 'Python 3 protocol 4'})`, () => {
      const dict = unpickle(pickle(batch, style), 'batch') as PyDict;
      expect(dict).toBeInstanceOf(PyDict);
      expect([...dict.entries.keys()]).toEqual(['batch_label', 'labels', 'data', 'filenames']);
      expect(dict.get('labels')).toEqual([3, 0, 65535, 70000]);
      const data = dict.get('data') as NdArray;
      expect(isNdArray(data)).toBe(true);
      expect(data.shape).toEqual([2, 3072]);
      expect(data.dtype).toEqual({ kind: 'u', itemSize: 1, littleEndian: true });
      expect(Buffer.from(data.data as Uint8Array).equals(Buffer.from(pixels))).toBe(true);
    });
  }

  it('reads int64 arrays and leaves big objects of a file on disk', () => {
    const dir = tempDir('pickle');
    const file = join(dir, 'b.pkl');
    writeFileSync(
      file,
      pickle(
        py.dict([
          ['data', py.u8array([2, 3072], pixels)],
          ['l', { t: 'i64array', data: [5, -2, 2 ** 40] }],
        ]),
        'py3',
      ),
    );
    const dict = unpickleFile(file, { lazyBytes: 4096 }) as PyDict;
    const data = dict.get('data') as NdArray;
    expect('kind' in data.data && data.data.kind === 'lazy').toBe(true);
    if (!(data.data instanceof Uint8Array)) {
      expect(Array.from(readLazy(data.data, 3072, 4))).toEqual(
        Array.from(pixels.subarray(3072, 3076)),
      );
    }
    expect(ndarrayToNumbers(dict.get('l') as NdArray)).toEqual([5, -2, 2 ** 40]);
  });

  it('refuses GLOBAL os.system + REDUCE and runs nothing', () => {
    const dir = tempDir('evil');
    const marker = join(dir, 'pwned');
    // cos\nsystem\n(S'touch <marker>'\ntR.  — the classic payload, in protocol 2 framing.
    const cmd = Buffer.from(`touch ${marker}`, 'latin1');
    const evil = Buffer.concat([
      Buffer.from([0x80, 0x02]),
      Buffer.from('cos\nsystem\n', 'latin1'),
      Buffer.from([0x55, cmd.length]),
      cmd,
      Buffer.from([0x85, 0x52, 0x2e]),
    ]);
    expect(() => unpickle(evil, 'evil.pkl')).toThrow(
      /Pickle evil\.pkl, opcode at byte 2: refers to the Python global 'os\.system'/,
    );
    expect(existsSync(marker)).toBe(false);
  });

  it('refuses builtins.eval via STACK_GLOBAL, unknown opcodes, and REDUCE on non-callables', () => {
    const stackGlobal = Buffer.concat([
      Buffer.from([0x80, 0x04, 0x8c, 8]),
      Buffer.from('builtins'),
      Buffer.from([0x8c, 4]),
      Buffer.from('eval'),
      Buffer.from([0x93]),
    ]);
    expect(() => unpickle(stackGlobal, 'e.pkl')).toThrow(
      /byte 18: refers to the Python global 'builtins\.eval'/,
    );
    // INST ('i') is a protocol-0 way to call a class: never used by these files.
    expect(() => unpickle(Buffer.from([0x80, 0x02, 0x28, 0x69]), 'i.pkl')).toThrow(
      /byte 3: has opcode 0x69 \('i'\)/,
    );
    // REDUCE with an int as the callable.
    expect(() => unpickle(Buffer.from([0x80, 0x02, 0x4b, 1, 0x29, 0x52, 0x2e]), 'r.pkl')).toThrow(
      /byte 5: calls \(REDUCE\) something that is not a permitted global/,
    );
    // numpy.ndarray may be an argument, never called itself.
    expect(() => unpickle(Buffer.from('\x80\x02cnumpy\nndarray\n)R.', 'latin1'), 'n.pkl')).toThrow(
      /calls numpy\.ndarray/,
    );
  });

  it('enforces size limits and reports truncation with the file name and offset', () => {
    const big = Buffer.from([0x80, 0x02, 0x54, 0xff, 0xff, 0xff, 0x7f]);
    expect(() => unpickle(big, 'big.pkl', { maxObjectBytes: 1 << 20 })).toThrow(
      /big\.pkl, opcode at byte 2: declares a 2147483647-byte object, over the 1048576-byte limit/,
    );
    const whole = pickle(batch);
    expect(() => unpickle(whole.subarray(0, 400), 'cut.pkl')).toThrow(
      /Pickle cut\.pkl ends inside an object at byte \d+ .*truncated/,
    );
    expect(() => unpickle(pickle(py.ints([1, 2, 3])), 'm.pkl', { maxItems: 2 })).toThrow(
      /more than 2 items/,
    );
  });
});
