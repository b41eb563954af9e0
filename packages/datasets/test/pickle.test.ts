import { closeSync, existsSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  isNdArray,
  ndarrayToNumbers,
  type PyBytes,
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

  it('reads numpy arrays as pickle.HIGHEST_PROTOCOL (5) writes them: _frombuffer + BYTEARRAY8', () => {
    // Written by Debian's python3 + numpy: scripts/gen-pickle5-fixture.py
    const file = join(
      dirname(fileURLToPath(import.meta.url)),
      'fixtures',
      'cifar-batch-protocol5.pkl',
    );
    for (const dict of [
      unpickle(readFileSync(file), 'p5.pkl') as PyDict,
      unpickleFile(file, { lazyBytes: 4096 }) as PyDict,
    ]) {
      expect(dict.get('batch_label')).toBe('training batch 1 of 1');
      expect(dict.get('labels')).toEqual([3, 0, 9, 7]);
      const data = dict.get('data') as NdArray;
      expect(data.shape).toEqual([4, 3072]);
      expect(data.dtype).toEqual({ kind: 'u', itemSize: 1, littleEndian: true });
      const bytes =
        data.data instanceof Uint8Array ? data.data : readLazy(data.data, 0, data.data.length);
      expect(bytes.length).toBe(4 * 3072);
      for (const i of [0, 1, 37, 3071, 3072, 12287]) expect(bytes[i]).toBe((i * 7) & 0xff);
      const big = dict.get('big_endian') as NdArray;
      expect(big.dtype).toEqual({ kind: 'f', itemSize: 4, littleEndian: false });
      expect(ndarrayToNumbers(big)).toEqual([0.5, -1.25, 3]);
      expect(ndarrayToNumbers(dict.get('int64') as NdArray)).toEqual([-(2 ** 40), 1, 2 ** 40]);
      const column = dict.get('column') as NdArray;
      expect(column.shape).toEqual([3, 1]);
      expect(ndarrayToNumbers(column)).toEqual([1, -2, 3]);
    }
  });

  it('refuses out-of-band buffers (NEXT_BUFFER) and 2-D Fortran-order _frombuffer arrays', () => {
    expect(() => unpickle(Buffer.from([0x80, 0x05, 0x97, 0x2e]), 'oob.pkl')).toThrow(
      /byte 2: has opcode 0x97 \(NEXT_BUFFER\)/,
    );
    // _frombuffer(bytearray(4 bytes), dtype('u1') built '|', (2, 2), 'F')
    const p5 = Buffer.concat([
      Buffer.from([0x80, 0x05]),
      Buffer.from('cnumpy.core.numeric\n_frombuffer\n', 'latin1'),
      Buffer.from([0x28, 0x96, 4, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]),
      Buffer.from('cnumpy\ndtype\n', 'latin1'),
      Buffer.from([0x8c, 2, 0x75, 0x31, 0x89, 0x88, 0x87, 0x52]), // dtype('u1', False, True)
      Buffer.from([0x28, 0x4b, 3, 0x8c, 1, 0x7c, 0x4e, 0x4e, 0x4e]),
      Buffer.from([
        0x4a, 0xff, 0xff, 0xff, 0xff, 0x4a, 0xff, 0xff, 0xff, 0xff, 0x4b, 0, 0x74, 0x62,
      ]),
      Buffer.from([0x4b, 2, 0x4b, 2, 0x86, 0x8c, 1, 0x46, 0x74, 0x52, 0x2e]),
    ]);
    expect(() => unpickle(p5, 'f.pkl')).toThrow(/Fortran order/);
    const c = Buffer.from(p5);
    c[c.length - 4] = 0x43; // 'F' → 'C'
    const arr = unpickle(c, 'c.pkl') as NdArray;
    expect(arr.shape).toEqual([2, 2]);
    expect(ndarrayToNumbers(arr)).toEqual([1, 2, 3, 4]);
  });

  it('bounds memory by the file: one memoised string encoded again and again is refused', () => {
    // _codecs.encode(<1 MiB str memoised>, 'latin1') 200 times, as a list: a 1 MB file that
    // would otherwise produce 200 MiB (the 33.5 MB version produced > 3 GiB and was OOM-killed).
    const text = Buffer.alloc(1 << 20, 0x61);
    const head = Buffer.concat([
      Buffer.from([0x80, 0x02, 0x5d]), // PROTO 2, EMPTY_LIST
      Buffer.from('c_codecs\nencode\nq\x000', 'latin1'), // memo 0: the global; POP
      Buffer.from([0x58]),
      Buffer.from([0, 0, 0x10, 0]), // BINUNICODE, 1 MiB
      text,
      Buffer.from([0x71, 1, 0x30]), // memo 1: the string; POP
      Buffer.from([0x28]), // MARK for APPENDS
    ]);
    const one = Buffer.from([0x68, 0, 0x68, 1, 0x8c, 6, ...Buffer.from('latin1'), 0x86, 0x52]);
    const file = Buffer.concat([
      head,
      ...Array.from({ length: 200 }, () => one),
      Buffer.from('e.'),
    ]);
    expect(file.length).toBeLessThan(1.1e6);
    expect(() => unpickle(file, 'bomb.pkl')).toThrow(
      /bomb\.pkl, opcode at byte \d+: needs more than \d+ bytes of memory to unpickle .* more than a \d+-byte file can honestly hold/,
    );
    // The same program with 3 encodes is data like any other.
    const ok = Buffer.concat([head, one, one, one, Buffer.from('e.')]);
    const list = unpickle(ok, 'ok.pkl') as PyBytes[];
    expect(list.length).toBe(3);
    expect(list[2].length).toBe(1 << 20);
  });

  it('bounds memory by the file: millions of MARKs are refused long before the end', () => {
    // 10 M MARK opcodes (a 10 MB file); the mark list used to grow without a cap.
    const dir = tempDir('marks');
    const file = join(dir, 'marks.pkl');
    const fd = openSync(file, 'w');
    writeSync(fd, Buffer.from([0x80, 0x02]));
    const chunk = Buffer.alloc(1 << 20, 0x28);
    for (let i = 0; i < 10; i++) writeSync(fd, chunk);
    writeSync(fd, Buffer.from([0x4e, 0x2e]));
    closeSync(fd);
    let message = '';
    try {
      unpickleFile(file);
    } catch (e) {
      message = (e as Error).message;
    }
    const at = Number(/opcode at byte (\d+)/.exec(message)?.[1]);
    expect(message).toMatch(/marks\.pkl, opcode at byte \d+: stack and MARKs exceed 2000000 items/);
    expect(at).toBe(2 + 2_000_000); // refused at the first MARK over the limit
    // With a higher item limit, the per-file memory budget refuses them, still before the end.
    let budget = '';
    try {
      unpickleFile(file, { maxStack: 1e9 });
    } catch (e) {
      budget = (e as Error).message;
    }
    expect(budget).toMatch(
      /needs more than \d+ bytes of memory to unpickle \(0 bytes decoded, 0 stack items, \d+ MARKs\)/,
    );
    expect(Number(/opcode at byte (\d+)/.exec(budget)?.[1])).toBeLessThan(8 * 2 ** 20);
  });
});
