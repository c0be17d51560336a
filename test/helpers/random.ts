/** Reproducible randomness for fuzz and chunking tests: a seeded PRNG, random cuts of a buffer. */


/** Deterministic PRNG (mulberry32): random tests print their seed and reproduce from it. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `buf` cut into pieces of 1..maxPiece bytes chosen by `rand`. */
export function randomChunks(buf: Buffer, rand: () => number, maxPiece: number): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off < buf.length; ) {
    const n = 1 + Math.floor(rand() * maxPiece);
    out.push(buf.subarray(off, off + n));
    off += n;
  }
  return out;
}
