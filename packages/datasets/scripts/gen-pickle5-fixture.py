#!/usr/bin/env python3
"""Reference fixture for packages/datasets/test/pickle.test.ts: a CIFAR-style batch dict pickled
with pickle.HIGHEST_PROTOCOL (5), where numpy writes each array as
numpy.core.numeric._frombuffer(bytearray, dtype, shape, order) with the bytes in BYTEARRAY8.

  cifar-batch-protocol5.pkl   {'batch_label': str, 'labels': [int], 'data': uint8 (4, 3072),
                               'big_endian': >f4 (3,), 'int64': <i8 (3,), 'column': int16 (3, 1)
                               Fortran order}; values follow the formulas in the test

Run with Debian's numpy: /usr/bin/python3 packages/datasets/scripts/gen-pickle5-fixture.py [OUT_DIR]
Default OUT_DIR: packages/datasets/test/fixtures
"""
import os
import pickle
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, '..', 'test', 'fixtures')
os.makedirs(out, exist_ok=True)
batch = {
    'batch_label': 'training batch 1 of 1',
    'labels': [3, 0, 9, 7],
    'data': ((np.arange(4 * 3072) * 7) & 0xFF).astype(np.uint8).reshape(4, 3072),
    'big_endian': np.array([0.5, -1.25, 3.0], dtype='>f4'),
    'int64': np.array([-(2 ** 40), 1, 2 ** 40], dtype='<i8'),
    'column': np.asfortranarray(np.array([[1], [-2], [3]], dtype=np.int16)),
}
assert pickle.HIGHEST_PROTOCOL == 5
path = os.path.join(out, 'cifar-batch-protocol5.pkl')
with open(path + '.tmp', 'wb') as f:
    pickle.dump(batch, f, protocol=pickle.HIGHEST_PROTOCOL)
os.replace(path + '.tmp', path)
print(path, os.path.getsize(path))
