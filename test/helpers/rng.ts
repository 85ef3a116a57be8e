// Seeded randomness for fuzz tests: a failure is replayed with the seed it logged.

export type Rng = () => number;

/** mulberry32: small, fast, good enough for test inputs. */
export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer env var (decimal), or `fallback` when unset. Throws on anything else. */
export function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^[0-9]+$/.test(raw)) throw new Error(`${name} must be a decimal integer, got ${JSON.stringify(raw)}`);
  return Number(raw);
}

/** The fuzz seed: FUGUE_TEST_FUZZ_SEED, else a random one (to be logged). */
export function fuzzSeed(): number {
  return envInt('FUGUE_TEST_FUZZ_SEED', Math.floor(Math.random() * 2 ** 32)) >>> 0;
}

export class Random {
  readonly next: Rng;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  bool(p = 0.5): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)] as T;
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(this.next() * 256);
    return b;
  }
  /** A short string mixing ASCII, control characters, non-ASCII and lone surrogates. */
  text(maxLen = 12): string {
    const n = this.int(0, maxLen);
    let s = '';
    for (let i = 0; i < n; i++) {
      const r = this.next();
      s += r < 0.6 ? String.fromCharCode(this.int(0x20, 0x7e)) : r < 0.75 ? String.fromCharCode(this.int(0, 0x1f)) : r < 0.9 ? String.fromCodePoint(this.int(0xa0, 0x2fff)) : r < 0.95 ? String.fromCharCode(this.int(0xd800, 0xdfff)) : String.fromCodePoint(this.int(0x1f300, 0x1f6ff));
    }
    return s;
  }
}
