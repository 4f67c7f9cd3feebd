#!/usr/bin/env python3
"""Writes test/fixtures/pyrandom.json: outputs of CPython's own `random` module for src/util/pyrandom.ts.

Seeds (including 0, 2^32 boundaries, a negative and a > 64-bit one) with getrandbits(32) streams (one long
enough to cross two state regenerations), getrandbits(k) for k up to 53, _randbelow(n) for many n, sample()
on both sides of Lib/random.py's pool/set threshold, and lm-evaluation-harness's exact pattern:
Random(1234).sample(range(39905), k) called repeatedly (39905 = HellaSwag's training split).

Run: /usr/bin/python3 reference/pyrandom_fixtures.py
"""
import json
import math
import os
import random
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, 'test', 'fixtures', 'pyrandom.json')

SEEDS = [0, 1, 42, 1234, -1234, 2**32 - 1, 2**32, 2**53 - 1, 12345678901234567890123]


def setsize(k):
    """Lib/random.py's sample(): populations up to this size use the pool list."""
    return 21 + (4 ** math.ceil(math.log(k * 3, 4)) if k > 5 else 0)


def streams():
    out = []
    for seed in SEEDS:
        r = random.Random(seed)
        out.append({'seed': str(seed), 'uint32': [r.getrandbits(32) for _ in range(1300 if seed == 1234 else 16)]})
    return out


def bits():
    r = random.Random(7)
    ks = [0, 1, 2, 5, 8, 16, 31, 32, 33, 40, 48, 52, 53]
    return {'seed': 7, 'calls': [[k, r.getrandbits(k)] for k in ks * 3]}


def randbelow():
    r = random.Random(2024)
    ns = [1, 2, 3, 4, 5, 7, 10, 100, 1000, 10042, 39905, 65535, 65536, 65537, 2**31 - 1, 2**31, 2**32 - 1, 2**32,
          2**32 + 1, 2**40 + 3, 2**52 + 1, 2**53 - 1]
    return {'seed': 2024, 'calls': [[n, r._randbelow(n)] for n in ns * 4]}


def samples():
    cases = []
    for k in (0, 1, 3, 5, 6, 10, 11, 22):
        s = setsize(k)
        for n in sorted({k, k + 1, s, s + 1, 1000, 39905}):
            if n < k:
                continue
            r = random.Random(1000 * k + n)
            cases.append({'seed': 1000 * k + n, 'n': n, 'k': k, 'setsize': s,
                          'draws': [r.sample(range(n), k) for _ in range(3)]})
    return cases


def harness():
    out = []
    for k in (10, 11):
        r = random.Random(1234)
        out.append({'seed': 1234, 'n': 39905, 'k': k, 'draws': [r.sample(range(39905), k) for _ in range(5)]})
    return out


def main():
    data = {'generator': 'reference/pyrandom_fixtures.py', 'python': sys.version.split()[0],
            'streams': streams(), 'getrandbits': bits(), 'randbelow': randbelow(), 'sample': samples(), 'harness': harness()}
    with open(OUT, 'w', encoding='utf-8') as f:
        json.dump(data, f, separators=(',', ':'))
        f.write('\n')
    print(f'wrote {OUT} ({os.path.getsize(OUT)} bytes, python {data["python"]})')


if __name__ == '__main__':
    main()
