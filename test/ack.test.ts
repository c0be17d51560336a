/**
 * --ack, sender side (issue 7): stream names, sequence numbers in the 16-bit
 * message type, line counting, and the window of unacknowledged messages.
 */
import { describe, expect, it } from 'vitest';
import {
  AckWindow,
  DEFAULT_ACK_WINDOW,
  MARKER_BYTES,
  MAX_ID_JUMP,
  RECEIVER_WINDOW,
  SEQ_MODULO,
  countLines,
  encodeMarker,
  isMarker,
  isStreamName,
  markerEnd,
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
    expect(countLines(Buffer.from('\n'))).toBe(1);
    expect(countLines(Buffer.from('\na'))).toBe(2);
    // A view: the LF right after it in the same memory is not its own.
    const mem = Buffer.from('x\nab\ncd\n');
    expect(countLines(mem.subarray(2, 5))).toBe(1);
    expect(countLines(mem.subarray(2, 4))).toBe(1);
    expect(countLines(mem.subarray(2, 7))).toBe(2);
  });
});

describe('AckWindow', () => {
  const B = Buffer.alloc(1000);
  const add = <R>(w: AckWindow<R>, first: number, lines: number, bytes: number, route: R): void => w.add(first, lines, B, 0, bytes, route);
  const pending = <R>(w: AckWindow<R>): R[] => {
    const out: R[] = [];
    w.forEachPending((r) => out.push(r));
    return out;
  };

  it('#16: a marker acknowledges every message wholly below its id: the low edge moves, lines and bytes are freed', () => {
    const w = new AckWindow<string>(100, 1000);
    add(w, 0, 1, 10, 'a');
    add(w, 1, 3, 30, 'b');
    add(w, 4, 1, 10, 'c');
    expect(w.lowest).toBe(0);
    expect([w.size, w.lines, w.bytes, w.end]).toEqual([3, 5, 50, 5]);
    expect(w.ackBelow(1)).toBe(1);
    expect(w.lowest).toBe(1);
    // A marker inside a message acknowledges none of it.
    expect(w.ackBelow(3)).toBe(0);
    expect(w.lowest).toBe(1);
    expect(w.ackBelow(5)).toBe(4);
    expect(w.lowest).toBeUndefined();
    expect([w.size, w.lines, w.bytes]).toEqual([0, 0, 0]);
    // An old marker (from a session before) acknowledges nothing more.
    expect(w.ackBelow(2)).toBe(0);
  });

  it('#16: oldestBuffer() passes over messages in buffers the queue does not own (copies), and is undefined when none is left', () => {
    const w = new AckWindow<string>(100);
    const [copy, block1, block2] = [Buffer.alloc(10), Buffer.alloc(100), Buffer.alloc(100)];
    const ours = (b: ArrayBufferLike): boolean => b === block1.buffer || b === block2.buffer;
    w.add(0, 1, copy, 0, 10, 'r');
    w.add(1, 1, block1, 0, 10, 'r');
    w.add(2, 1, block2, 0, 10, 'r');
    expect(w.oldestBuffer(() => true)).toBe(copy.buffer);
    expect(w.oldestBuffer(ours)).toBe(block1.buffer);
    w.ackBelow(2);
    expect(w.oldestBuffer(ours)).toBe(block2.buffer);
    expect(w.oldestBuffer((b) => b === block1.buffer)).toBeUndefined();
    w.ackBelow(3);
    expect(w.oldestBuffer(ours)).toBeUndefined();
  });

  it('#16: the unacknowledged messages are handed out in send order with their ranges, ids and line counts', () => {
    const w = new AckWindow<number>(100);
    const buf = Buffer.from('aaabbbbcc');
    w.add(7, 1, buf, 0, 3, 1);
    w.add(8, 2, buf, 3, 7, 2);
    w.add(10, 1, buf, 7, 9, 3);
    w.ackBelow(8);
    const got: [number, string, number, number][] = [];
    w.forEachPending((r, b, start, end, first, lines) => got.push([r, b.toString('latin1', start, end), first, lines]));
    expect(got).toEqual([
      [2, 'bbbb', 8, 2],
      [3, 'cc', 10, 1],
    ]);
  });

  it('#16: the rings grow past their first size and keep order across the wrap of their slots', () => {
    const w = new AckWindow<number>(SEQ_MODULO / 4);
    let id = 0;
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 3000; i++) add(w, id++, 1, 1, id);
      expect(w.ackBelow(id - 500)).toBe(round === 0 ? 2500 : 3000);
    }
    expect(w.size).toBe(500);
    expect(pending(w)).toEqual(Array.from({ length: 500 }, (_, i) => id - 500 + i + 1));
  });

  it('acknowledges across the 16-bit wrap (ids are whole numbers, only the wire carries them mod 2^16)', () => {
    const w = new AckWindow<number>(1000);
    const base = 3 * SEQ_MODULO - 5;
    for (let i = 0; i < 10; i++) add(w, base + i, 1, 1, i);
    expect(w.ackBelow(base + 7)).toBe(7);
    expect(pending(w)).toEqual([7, 8, 9]);
    expect(w.ackBelow(base + 10)).toBe(3);
    expect(w.lowest).toBeUndefined();
  });

  it('fits() keeps the span of unacknowledged ids and the bytes within bounds', () => {
    const w = new AckWindow<number>(10, 100);
    expect(w.fits(0, 50, 1000)).toBe(true); // nothing in flight: one message always goes
    add(w, 0, 4, 40, 0);
    expect(w.fits(4, 6, 10)).toBe(true);
    expect(w.fits(4, 7, 10)).toBe(false);
    expect(w.fits(4, 1, 61)).toBe(false);
    // Ids skipped (lines dropped before sending) count in the span.
    expect(w.fits(9, 1, 1)).toBe(true);
    expect(w.fits(10, 1, 1)).toBe(false);
    w.ackBelow(4);
    expect(w.fits(10, 1, 1)).toBe(true);
  });

  it('refuses ids that go backwards, and windows near the wrap', () => {
    const w = new AckWindow<number>(10);
    add(w, 5, 2, 1, 0);
    expect(() => add(w, 6, 1, 1, 0)).toThrow(RangeError);
    expect(() => new AckWindow(SEQ_MODULO / 2)).toThrow(RangeError);
  });

  it('#16: linesBelow() counts the unacknowledged lines under an id (a batch straddling it in part)', () => {
    const w = new AckWindow<number>(100);
    add(w, 10, 1, 1, 0);
    add(w, 11, 4, 1, 0);
    add(w, 15, 1, 1, 0);
    expect([w.linesBelow(10), w.linesBelow(11), w.linesBelow(13), w.linesBelow(16), w.linesBelow(99)]).toEqual([0, 1, 3, 6, 6]);
  });

  it('clear() reports the unacknowledged lines', () => {
    const w = new AckWindow<number>(100);
    add(w, 0, 3, 1, 0);
    add(w, 3, 2, 1, 0);
    w.ackBelow(3);
    expect(w.clear()).toBe(2);
    expect(w.size).toBe(0);
    add(w, 0, 1, 1, 0); // ids may start over after clear (a new stream)
  });

  it('#16: after clear() the ring grows again from nothing and keeps send order', () => {
    const w = new AckWindow<number>(8192);
    for (let i = 0; i < 3000; i++) add(w, i, 1, 1, 0);
    w.clear();
    for (let i = 0; i < 3000; i++) add(w, i, 1, 1, 0);
    const firsts: number[] = [];
    w.forEachPending((_r, _b, _s, _e, first) => firsts.push(first));
    expect(firsts).toEqual(Array.from({ length: 3000 }, (_, i) => i));
    expect(w.ackBelow(2000)).toBe(2000);
    expect(w.lowest).toBe(2000);
  });
});

describe('#16: markers', () => {
  it('#16: a marker carries the id it acknowledges below, up to 2^53, and is told from any log line', () => {
    for (const end of [0, 1, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 12345, Number.MAX_SAFE_INTEGER]) {
      const m = encodeMarker(end);
      expect(m.length).toBe(MARKER_BYTES);
      expect(isMarker(m)).toBe(true);
      expect(markerEnd(m)).toBe(end);
    }
    const m = encodeMarker(42);
    expect(isMarker(m.subarray(0, 15))).toBe(false);
    expect(isMarker(Buffer.concat([m, Buffer.from('x')]))).toBe(false);
    const bad = Buffer.from(m);
    bad[3] ^= 1;
    expect(isMarker(bad)).toBe(false);
    expect(markerEnd(bad)).toBeUndefined();
    // Log lines: LF-terminated text, never starting with NUL.
    expect(isMarker(Buffer.from('web1 GET /index 200\n'))).toBe(false);
    expect(isMarker(Buffer.from('0123456789abcde\n'))).toBe(false);
  });
});
