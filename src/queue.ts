/**
 * The bounded log buffer between input and the daemon, in the manner of
 * sonic-boom: bounded in entries and in bytes, with an explicit policy when
 * full, and every drop counted and reported through `onDrop`. Input is never
 * blocked: a full queue drops, it does not push back on the web server.
 */

export type OverflowPolicy = 'drop-newest' | 'drop-oldest';
export const OVERFLOW_POLICIES: readonly OverflowPolicy[] = ['drop-newest', 'drop-oldest'];

/** @default 100000 */
export const DEFAULT_QUEUE_LINES = 100_000;
/** @default 32 MiB */
export const DEFAULT_QUEUE_BYTES = 32 * 1024 * 1024;

export interface Sized {
  readonly size: number;
}

export class BoundedQueue<T extends Sized> {
  private items: (T | undefined)[] = [];
  private head = 0;
  private bytesHeld = 0;
  /** Entries dropped since creation, by the policy in force. */
  dropped = 0;

  constructor(
    readonly maxLength: number,
    readonly maxBytes: number,
    readonly policy: OverflowPolicy,
    private readonly onDrop: (item: T, reason: OverflowPolicy) => void = () => {},
  ) {}

  get length(): number {
    return this.items.length - this.head;
  }

  get bytes(): number {
    return this.bytesHeld;
  }

  /** Add an entry; returns false if it was the one dropped (drop-newest). */
  push(item: T): boolean {
    if (item.size > this.maxBytes) {
      this.drop(item);
      return false;
    }
    while (this.length >= this.maxLength || this.bytesHeld + item.size > this.maxBytes) {
      if (this.policy === 'drop-newest') {
        this.drop(item);
        return false;
      }
      this.drop(this.shift()!);
    }
    this.items.push(item);
    this.bytesHeld += item.size;
    return true;
  }

  peek(): T | undefined {
    return this.items[this.head];
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head]!;
    this.items[this.head++] = undefined;
    this.bytesHeld -= item.size;
    // Compact now and then, so the array does not grow without bound.
    if (this.head >= 4096 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  /** Remove everything (at exit, after the drain timeout), returning how many were removed. */
  clear(): number {
    const n = this.length;
    this.items = [];
    this.head = 0;
    this.bytesHeld = 0;
    return n;
  }

  private drop(item: T): void {
    this.dropped++;
    this.onDrop(item, this.policy);
  }
}
