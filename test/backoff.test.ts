import { describe, expect, it } from 'vitest';
import { exponentialBackoff } from '../src/backoff.js';

describe('exponentialBackoff', () => {
  it('doubles from the initial delay up to the cap', () => {
    const d = exponentialBackoff({ initial: 100, max: 1000, jitter: 0 });
    expect([1, 2, 3, 4, 5, 6, 50].map((a) => d(a, null))).toEqual([100, 200, 400, 800, 1000, 1000, 1000]);
  });

  it('jitter only shortens, within its fraction', () => {
    const lo = exponentialBackoff({ initial: 1000, max: 1000, jitter: 0.5, random: () => 0.999999 });
    const hi = exponentialBackoff({ initial: 1000, max: 1000, jitter: 0.5, random: () => 0 });
    expect(lo(1, null)).toBe(500);
    expect(hi(1, null)).toBe(1000);
    const rnd = exponentialBackoff({ initial: 1000, max: 1000, jitter: 0.3 });
    for (let i = 0; i < 100; i++) {
      const v = rnd(1, null) as number;
      expect(v).toBeGreaterThanOrEqual(700);
      expect(v).toBeLessThanOrEqual(1000);
    }
  });

  it('gives up after maxAttempts', () => {
    const d = exponentialBackoff({ maxAttempts: 2, jitter: 0 });
    expect(d(2, null)).not.toBe(false);
    expect(d(3, null)).toBe(false);
  });
});
