#!/usr/bin/env python3
"""Reference numbers for packages/random/test/streams.test.ts, computed independently of the
TypeScript: the generator written again from its definition (SplitMix32-style seeding with the
murmur3 finaliser, then xoshiro128** of Blackman & Vigna) and the stream table of src/streams.ts
(its derivation constants are part of every stored run's results, so they are pinned here).

Writes packages/random/test/fixtures/streams-reference.json. Plain Python 3, no packages:
    /usr/bin/python3 packages/random/scripts/gen-streams-reference.py
"""
import json
import math
import os

M32 = 0xFFFFFFFF
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures',
                   'streams-reference.json')


def rotl(x, k):
    return ((x << k) | (x >> (32 - k))) & M32


class Rng:
    def __init__(self, seed):
        x = (math.floor(seed) & M32) ^ 0x9E3779B9
        state = []
        for _ in range(4):
            x = (x + 0x9E3779B9) & M32
            z = x
            z = ((z ^ (z >> 16)) * 0x85EBCA6B) & M32
            z = ((z ^ (z >> 13)) * 0xC2B2AE35) & M32
            state.append(z ^ (z >> 16))
        self.s = state

    def next_u32(self):
        s0, s1, s2, s3 = self.s
        result = (rotl((s1 * 5) & M32, 7) * 9) & M32
        t = (s1 << 9) & M32
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = rotl(s3, 11)
        self.s = [s0, s1, s2, s3]
        return result

    def next(self):
        return self.next_u32() / 4294967296

    def uniform(self, lo, hi):
        return lo + (hi - lo) * self.next()

    def int(self, n):
        return math.floor(self.next() * n)

    def permutation(self, n):
        p = list(range(n))
        for i in range(n - 1, 0, -1):
            j = self.int(i + 1)
            p[i], p[j] = p[j], p[i]
        return p

    def fork(self, label):
        return Rng(self.next_u32() ^ (((label + 1) * 0x27D4EB2D) & M32))


def hashed(seed, epoch, step, stream_id, pos):
    h = ((seed ^ 0x9E3779B9) * 0x85EBCA6B) & M32
    for v in (epoch, step, stream_id, pos):
        h = ((h ^ ((v + 0x632BE5AB) & M32)) * 0xC2B2AE35) & M32
        h ^= h >> 15
    return Rng(h)


STREAMS = {
    'init': lambda seed, epoch, step: Rng(seed),
    'epochOrder': lambda seed, epoch, step: Rng(seed).fork(0x5401).fork(epoch),
    'batchViews': lambda seed, epoch, step: Rng(seed).fork(0xBA7C).fork(epoch).fork(step),
    'shuffle': lambda seed, epoch, step: hashed(seed, epoch, step, 3, 0),
    'trainSubset': lambda seed, epoch, step: hashed(seed, 0, 0, 5, 1),
    'testSubset': lambda seed, epoch, step: hashed(seed, 0, 0, 5, 2),
    'evaluation': lambda seed, epoch, step: Rng(0),
}


def draws(rng):
    """What the test draws from a generator, in this order."""
    u32 = [rng.next_u32() for _ in range(4)]
    return {
        'u32': u32,
        'next': rng.next(),
        'uniform': rng.uniform(-3, 5),
        'int': rng.int(1000),
        'permutation': rng.permutation(12),
        'fork': rng.fork(7).next_u32(),
    }


def main():
    cases = []
    for seed, epoch, step in [(0, 0, 0), (42, 3, 7), (12345, 1, 390), (4294967295, 199, 0)]:
        for name, make in STREAMS.items():
            cases.append({'stream': name, 'seed': seed, 'epoch': epoch, 'step': step,
                          'draws': draws(make(seed, epoch, step))})
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    lines = ',\n  '.join(json.dumps(c) for c in cases)  # one case a line
    with open(OUT, 'w') as f:
        f.write('{\n "cases": [\n  ' + lines + '\n ]\n}\n')


if __name__ == '__main__':
    main()
