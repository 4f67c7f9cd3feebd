// Seeded random numbers with a state that saves and restores exactly (for bit-exact resume).
// xoshiro128** on four uint32 words, seeded by splitmix32; normals by Box-Muller (no cached spare,
// so the state alone determines the future).

export type RngState = [number, number, number, number]

/** The largest seed: a seed is 32 bits (splitmix32 expands it), so --seed flags stop here rather than letting
 *  seeds 2^32 apart give the same stream. */
export const MAX_SEED = 0xffff_ffff

export class Rng {
  private s: Uint32Array

  constructor(seed: number | RngState) {
    this.s = new Uint32Array(4)
    if (typeof seed === 'number') {
      let x = seed >>> 0
      for (let i = 0; i < 4; i++) {
        // splitmix32
        x = (x + 0x9e3779b9) >>> 0
        let z = x
        z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
        z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
        this.s[i] = (z ^ (z >>> 16)) >>> 0
      }
      if ((this.s[0]! | this.s[1]! | this.s[2]! | this.s[3]!) === 0) this.s[0] = 1
    } else {
      this.s.set(seed)
    }
  }

  state(): RngState {
    return [this.s[0]!, this.s[1]!, this.s[2]!, this.s[3]!]
  }

  /** Uniform uint32. */
  nextU32(): number {
    const s = this.s
    const result = Math.imul(rotl(Math.imul(s[1]!, 5) >>> 0, 7), 9) >>> 0
    const t = (s[1]! << 9) >>> 0
    s[2]! ^= s[0]!
    s[3]! ^= s[1]!
    s[1]! ^= s[2]!
    s[0]! ^= s[3]!
    s[2]! ^= t
    s[3] = rotl(s[3]!, 11)
    return result
  }

  /** Uniform in [0, 1) with 32 bits of randomness. */
  uniform(): number {
    return this.nextU32() / 4294967296
  }

  /** Standard normal (Box-Muller, one value per call). */
  normal(): number {
    const u1 = (this.nextU32() + 1) / 4294967297 // (0, 1]
    const u2 = this.uniform()
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2)
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n)
  }

  /** In-place Fisher-Yates shuffle. */
  shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1)
      const tmp = a[i]!
      a[i] = a[j]!
      a[j] = tmp
    }
    return a
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0
}
