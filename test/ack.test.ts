/**
 * --ack, sender side (issue 7): stream names, sequence numbers in the 16-bit
 * message type, line counting, and the window of unacknowledged messages.
 */
import { describe, expect, it } from 'vitest';
import {
  AckWindow,
  DEFAULT_ACK_WINDOW,
  MAX_ID_JUMP,
  RECEIVER_WINDOW,
  SEQ_MODULO,
  countLines,
  isStreamName,
  newStreamName,
  seqMessType,
  seqOf,
  streamOf,
} from '../src/ack.js';
import { validatePrivateName } from '../src/spread/address.js';
import { encodeHint } from '../src/spread/encode.js';
import { decodeHint } from '../src/spread/decoder.js';

describe('stream names', () => {
  it('are legal Spread private names, marked, and distinct', () => {
    const names = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const n = newStreamName();
      expect(n).toHaveLength(10);
      expect(isStreamName(n)).toBe(true);
      expect(() => validatePrivateName(n)).not.toThrow();
      names.add(n);
    }
    expect(names.size).toBe(1000);
  });

  it('streamOf takes the name from a private group, whatever the daemon', () => {
    expect(streamOf('#=abc123xyz#localhost')).toBe('=abc123xyz');
    expect(streamOf('#=abc123xyz#other-daemon')).toBe('=abc123xyz');
    expect(streamOf('#sp1234#localhost')).toBeUndefined();
    expect(streamOf('#=short#localhost')).toBeUndefined();
    expect(streamOf('=abc123xyz')).toBeUndefined();
    expect(streamOf('')).toBeUndefined();
  });
});

describe('sequence numbers', () => {
  it('survive the trip through the wire hint for every 16-bit value', () => {
    for (const id of [0, 1, 255, 256, 32767, 32768, 65535, 65536, 65537, 1_000_000, 2 ** 40 + 5]) {
      const mt = seqMessType(id);
      expect(mt).toBeGreaterThanOrEqual(-32768);
      expect(mt).toBeLessThanOrEqual(32767);
      const { messType } = decodeHint(encodeHint(mt));
      expect(seqOf(messType)).toBe(id % SEQ_MODULO);
    }
  });

  it('windows are consistent: resends stay far inside the receiver window, jumps inside the half wrap', () => {
    expect(DEFAULT_ACK_WINDOW).toBeLessThan(RECEIVER_WINDOW);
    expect(MAX_ID_JUMP + DEFAULT_ACK_WINDOW).toBeLessThan(SEQ_MODULO / 2);
  });

  it('countLines counts LF-terminated lines and an unterminated tail', () => {
    expect(countLines(Buffer.from('a\n'))).toBe(1);
    expect(countLines(Buffer.from('a\nb\nc\n'))).toBe(3);
    expect(countLines(Buffer.from('a\nb'))).toBe(2);
    expect(countLines(Buffer.from('a'))).toBe(1);
    expect(countLines(Buffer.from(''))).toBe(1);
    expect(countLines(Buffer.from('\n\n'))).toBe(2);
  });
});

describe('AckWindow', () => {
  it('acks in order move the low edge and free lines and bytes', () => {
    const w = new AckWindow<string>(100, 1000);
    w.add(0, 1, 10, 'a');
    w.add(1, 3, 30, 'b');
    w.add(4, 1, 10, 'c');
    expect(w.lowest).toBe(0);
    expect([w.size, w.lines, w.bytes]).toEqual([3, 5, 50]);
    expect(w.ack(0, 1)?.item).toBe('a');
    expect(w.lowest).toBe(1);
    expect(w.ack(1, 3)?.item).toBe('b');
    expect(w.ack(4, 1)?.item).toBe('c');
    expect(w.lowest).toBeUndefined();
    expect([w.size, w.lines, w.bytes]).toEqual([0, 0, 0]);
  });

  it('acks out of order: the low edge waits for the oldest', () => {
    const w = new AckWindow<number>(100);
    for (let i = 0; i < 5; i++) w.add(i, 1, 1, i);
    w.ack(3, 1);
    w.ack(1, 1);
    expect(w.lowest).toBe(0);
    expect([...w.pending()].map((e) => e.item)).toEqual([0, 2, 4]);
    w.ack(0, 1);
    expect(w.lowest).toBe(2);
    w.ack(2, 1);
    expect(w.lowest).toBe(4);
  });

  it('ignores acks that match nothing in flight (duplicates, other line counts)', () => {
    const w = new AckWindow<number>(100);
    w.add(10, 2, 1, 0);
    expect(w.ack(10, 1)).toBeUndefined();
    expect(w.ack(11, 1)).toBeUndefined();
    expect(w.ack(10, 2)).toBeDefined();
    expect(w.ack(10, 2)).toBeUndefined();
    expect(w.stray).toBe(3);
  });

  it('matches acks across the 16-bit wrap', () => {
    const w = new AckWindow<number>(1000);
    const base = 3 * SEQ_MODULO - 5;
    for (let i = 0; i < 10; i++) w.add(base + i, 1, 1, i);
    for (let i = 0; i < 10; i++) expect(w.ack(seqOf(seqMessType(base + i)), 1)?.item).toBe(i);
    expect(w.lowest).toBeUndefined();
  });

  it('fits() keeps the span of unacknowledged ids and the bytes within bounds', () => {
    const w = new AckWindow<number>(10, 100);
    expect(w.fits(0, 50, 1000)).toBe(true); // nothing in flight: one message always goes
    w.add(0, 4, 40, 0);
    expect(w.fits(4, 6, 10)).toBe(true);
    expect(w.fits(4, 7, 10)).toBe(false);
    expect(w.fits(4, 1, 61)).toBe(false);
    // Ids skipped (lines dropped before sending) count in the span.
    expect(w.fits(9, 1, 1)).toBe(true);
    expect(w.fits(10, 1, 1)).toBe(false);
    w.ack(0, 4);
    expect(w.fits(10, 1, 1)).toBe(true);
  });

  it('refuses ids that go backwards, and windows near the wrap', () => {
    const w = new AckWindow<number>(10);
    w.add(5, 2, 1, 0);
    expect(() => w.add(6, 1, 1, 0)).toThrow(RangeError);
    expect(() => new AckWindow(SEQ_MODULO / 2)).toThrow(RangeError);
  });

  it('clear() reports the unacknowledged lines', () => {
    const w = new AckWindow<number>(100);
    w.add(0, 3, 1, 0);
    w.add(3, 2, 1, 0);
    w.ack(0, 3);
    expect(w.clear()).toBe(2);
    expect(w.size).toBe(0);
    w.add(0, 1, 1, 0); // ids may start over after clear (a new stream)
  });
});
