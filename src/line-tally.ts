/**
 * Lines carried by the last messages sent on the current session, so that
 * "the last N messages never left" (SpreadClient.unsentMessages at a close)
 * becomes a line count. Bounded: enough entries for what the session may
 * hold unsent (its high-water mark).
 */
const SIZE = 1 << 16;
const MASK = SIZE - 1;

export class LineTally {
  private ring = new Uint32Array(SIZE);
  private n = 0;

  reset(): void {
    this.n = 0;
  }

  push(lines: number): void {
    this.ring[this.n++ & MASK] = lines;
  }

  /** Lines in the last `messages` messages. */
  lastLines(messages: number): number {
    let sum = 0;
    const k = Math.min(messages, this.n, SIZE);
    for (let i = 1; i <= k; i++) sum += this.ring[(this.n - i) & MASK]!;
    return sum;
  }
}
