// CPython's random.Random, the part lm-evaluation-harness's few-shot sampler uses: MT19937 seeded from an int
// (init_by_array over the 32-bit words of abs(seed), as Modules/_randommodule.c does), getrandbits,
// _randbelow (getrandbits with rejection) and sample() with both of Lib/random.py's branches (a pool list
// for small populations, a set of picked indices for large ones). Same seed, same calls -> same numbers as
// Python 3 (checked against /usr/bin/python3 by test/util/pyrandom.test.ts).

const N = 624
const M = 397
const MATRIX_A = 0x9908b0df
const UPPER_MASK = 0x80000000
const LOWER_MASK = 0x7fffffff
const TWO_32 = 4294967296

export class PyRandom {
  private readonly mt = new Uint32Array(N)   // (N) the generator state
  private mti = N + 1

  /** random.Random(seed): an integer (number or bigint); the sign is ignored, as in CPython. */
  constructor(seed: number | bigint) {
    this.seed(seed)
  }

  seed(seed: number | bigint): void {
    if (typeof seed === 'number' && !Number.isSafeInteger(seed)) {
      throw new RangeError(`pyrandom: seed must be a safe integer or a bigint, got ${seed}`)
    }
    let a = BigInt(seed)
    if (a < 0n) a = -a
    const key: number[] = []
    for (; a > 0n; a >>= 32n) key.push(Number(a & 0xffffffffn))
    this.initByArray(key.length > 0 ? key : [0])
  }

  private initGenrand(s: number): void {
    const mt = this.mt
    mt[0] = s >>> 0
    for (let i = 1; i < N; i++) {
      const p = mt[i - 1]!
      mt[i] = Math.imul(1812433253, p ^ (p >>> 30)) + i
    }
    this.mti = N
  }

  /** key: (K) 32-bit words, least significant first. */
  private initByArray(key: number[]): void {
    const mt = this.mt
    this.initGenrand(19650218)
    let i = 1, j = 0
    for (let k = Math.max(N, key.length); k > 0; k--) {
      const p = mt[i - 1]!
      mt[i] = ((mt[i]! ^ Math.imul(p ^ (p >>> 30), 1664525)) >>> 0) + key[j]! + j   // Uint32Array wraps mod 2^32
      i++; j++
      if (i >= N) { mt[0] = mt[N - 1]!; i = 1 }
      if (j >= key.length) j = 0
    }
    for (let k = N - 1; k > 0; k--) {
      const p = mt[i - 1]!
      mt[i] = ((mt[i]! ^ Math.imul(p ^ (p >>> 30), 1566083941)) >>> 0) - i
      i++
      if (i >= N) { mt[0] = mt[N - 1]!; i = 1 }
    }
    mt[0] = 0x80000000   // MSB is 1, assuring a non-zero initial array
  }

  /** Regenerates the N words of state (the MT19937 "twist"). */
  private twist(): void {
    const mt = this.mt
    const mix = (a: number, b: number, far: number): number => {
      const y = (mt[a]! & UPPER_MASK) | (mt[b]! & LOWER_MASK)
      return mt[far]! ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0)
    }
    let kk = 0
    for (; kk < N - M; kk++) mt[kk] = mix(kk, kk + 1, kk + M)
    for (; kk < N - 1; kk++) mt[kk] = mix(kk, kk + 1, kk + M - N)
    mt[N - 1] = mix(N - 1, 0, M - 1)
    this.mti = 0
  }

  /** The next tempered 32-bit output, in [0, 2^32). */
  nextUint32(): number {
    if (this.mti >= N) this.twist()
    let y = this.mt[this.mti++]!
    y ^= y >>> 11
    y ^= (y << 7) & 0x9d2c5680
    y ^= (y << 15) & 0xefc60000
    y ^= y >>> 18
    return y >>> 0
  }

  /** random.getrandbits(k) for 0 <= k <= 53: 32-bit words least significant first, the last one's top bits. */
  getrandbits(k: number): number {
    if (!Number.isInteger(k) || k < 0 || k > 53) throw new RangeError(`pyrandom: getrandbits supports 0..53 bits, got ${k}`)
    if (k === 0) return 0
    if (k <= 32) return this.nextUint32() >>> (32 - k)
    const low = this.nextUint32()
    return (this.nextUint32() >>> (64 - k)) * TWO_32 + low
  }

  /** random._randbelow(n): a uniform integer in [0, n), n >= 1, by rejection on getrandbits(n.bit_length()). */
  randbelow(n: number): number {
    if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`pyrandom: randbelow needs an integer n >= 1, got ${n}`)
    const k = bitLength(n)
    let r = this.getrandbits(k)
    while (r >= n) r = this.getrandbits(k)
    return r
  }

  /** The indices random.sample(range(n), k) returns: k distinct integers in [0, n), in selection order. */
  sampleIndices(n: number, k: number): number[] {
    if (!Number.isInteger(k) || k < 0 || k > n) throw new RangeError(`pyrandom: sample larger than population or is negative (k ${k}, n ${n})`)
    const result = new Array<number>(k)
    if (n <= sampleSetSize(k)) {
      const pool = Array.from({ length: n }, (_, i) => i)   // small population: a shrinking pool list
      for (let i = 0; i < k; i++) {
        const j = this.randbelow(n - i)
        result[i] = pool[j]!
        pool[j] = pool[n - i - 1]!
      }
      return result
    }
    const selected = new Set<number>()                      // large population: redraw indices already taken
    for (let i = 0; i < k; i++) {
      let j = this.randbelow(n)
      while (selected.has(j)) j = this.randbelow(n)
      selected.add(j)
      result[i] = j
    }
    return result
  }

  /** random.sample(population, k): k distinct elements, as Python picks them for the same state. */
  sample<T>(population: readonly T[], k: number): T[] {
    return this.sampleIndices(population.length, k).map(i => population[i]!)
  }
}

/** int.bit_length() for 1 <= n < 2^53. */
function bitLength(n: number): number {
  return n < TWO_32 ? 32 - Math.clz32(n) : 64 - Math.clz32(Math.floor(n / TWO_32))
}

/** Lib/random.py's threshold: populations up to this size use the pool branch. */
export function sampleSetSize(k: number): number {
  return k > 5 ? 21 + 4 ** Math.ceil(Math.log(k * 3) / Math.log(4)) : 21
}
