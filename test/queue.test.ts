import { describe, expect, it } from 'vitest';
import { BoundedQueue } from '../src/queue.js';

const item = (id: number, size = 10) => ({ id, size });

describe('BoundedQueue', () => {
  it('drop-newest keeps the oldest entries and reports each drop', () => {
    const dropped: number[] = [];
    const q = new BoundedQueue<ReturnType<typeof item>>(3, 1000, 'drop-newest', (e) => dropped.push(e.id));
    for (let i = 0; i < 5; i++) q.push(item(i));
    expect([q.shift()!.id, q.shift()!.id, q.shift()!.id]).toEqual([0, 1, 2]);
    expect(dropped).toEqual([3, 4]);
    expect(q.dropped).toBe(2);
  });

  it('drop-oldest keeps the newest entries', () => {
    const dropped: number[] = [];
    const q = new BoundedQueue<ReturnType<typeof item>>(3, 1000, 'drop-oldest', (e) => dropped.push(e.id));
    for (let i = 0; i < 5; i++) q.push(item(i));
    expect([q.shift()!.id, q.shift()!.id, q.shift()!.id]).toEqual([2, 3, 4]);
    expect(dropped).toEqual([0, 1]);
  });

  it('bounds bytes as well as entries, and refuses an entry larger than the whole bound', () => {
    const q = new BoundedQueue<ReturnType<typeof item>>(100, 100, 'drop-oldest');
    for (let i = 0; i < 20; i++) q.push(item(i, 30));
    expect(q.bytes).toBeLessThanOrEqual(100);
    expect(q.length).toBe(3);
    expect(q.push(item(99, 101))).toBe(false);
    expect(q.length).toBe(3);
  });

  it('stays bounded over a long run of pushes and shifts (memory does not grow with backlog)', () => {
    const q = new BoundedQueue<ReturnType<typeof item>>(1000, 1e9, 'drop-newest');
    for (let i = 0; i < 200_000; i++) {
      q.push(item(i));
      if (i % 3 === 0) q.shift();
    }
    expect(q.length).toBe(1000);
    expect((q as unknown as { items: unknown[] }).items.length).toBeLessThan(10_000);
    expect(q.clear()).toBe(1000);
    expect(q.bytes).toBe(0);
  });
});
