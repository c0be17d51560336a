/**
 * The bounded log buffer between input and the daemon, in the manner of
 * sonic-boom: bounded in lines and in bytes, with an explicit policy when
 * full, and every drop counted and reported through `onDrop`. Under the
 * drop policies input is never blocked: a full queue drops, it does not push
 * back on the web server. Under `block` the queue reports `full` and its
 * reader is expected to stop reading until there is room again (a file being
 * replayed can wait; a web server cannot).
 *
 * Lines are copied into large append-only blocks and described by typed
 * arrays, not kept as one Buffer and one object each: a backlog of 100k
 * lines is then a few dozen objects for the garbage collector instead of
 * 200k long-lived ones (which cost more CPU than everything else a line
 * needs), memory is the bytes held plus a few blocks, and lines queued one
 * after the other are contiguous, so a batch is a view, not a copy.
 *
 * One concern, the memory queue (an OutboundQueue, see outbound.ts): its
 * ring of line descriptions, its blocks and its overflow policy.
 *
 * Over 300 lines on purpose: one concern, the in-memory queue (its block
 * storage, rings and the three overflow policies).
 */
import { choiceOption, intOption } from './options.js';
import { type BlockHolder, type MessageRange, type OutboundQueue, type QueuedMessage, wholeRange } from './outbound.js';

export type OverflowPolicy = 'drop-newest' | 'drop-oldest' | 'block';
export const OVERFLOW_POLICIES: readonly OverflowPolicy[] = ['drop-newest', 'drop-oldest', 'block'];

/**
 * The policy when none is given: `block` for input from a regular file (a log
 * replayed after an outage can wait, nothing need be lost), `drop-newest` for
 * a pipe (the web server writing it must never wait for us).
 */
export function defaultOnFull(stdinIsFile: boolean): OverflowPolicy {
  return stdinIsFile ? 'block' : 'drop-newest';
}

/**
 * Under `block`, lines past the limits still taken: what the reader had in
 * hand (one read, e.g. 64 KiB of short lines) when the queue filled. Past the
 * limits plus this, even `block` drops the newest (counted): a reader that
 * does not stop cannot grow the queue without bound.
 */
export const BLOCK_SLACK_LINES = 65_536;
/** @default 1 MiB */
export const BLOCK_SLACK_BYTES = 1024 * 1024;

/** @default 100000 */
export const DEFAULT_QUEUE_LINES = 100_000;
/** @default 32 MiB */
export const DEFAULT_QUEUE_BYTES = 32 * 1024 * 1024;
export interface LineQueueOptions {
  /** @default 100000 */
  maxLines?: number;
  /** @default 32 MiB */
  maxBytes?: number;
  /** @default 'drop-newest' */
  policy?: OverflowPolicy;
}

/** Defaults filled and checked (OptionError, code INVALID_ARGUMENT). */
export function resolveQueueOptions(o: LineQueueOptions = {}): Required<LineQueueOptions> {
  return {
    maxLines: intOption('maxLines', o.maxLines, DEFAULT_QUEUE_LINES, { min: 1, max: 2 ** 31 - 1, unit: 'lines' }),
    maxBytes: intOption('maxBytes', o.maxBytes, DEFAULT_QUEUE_BYTES, { min: 1, unit: 'bytes' }),
    policy: choiceOption('policy', o.policy, 'drop-newest', OVERFLOW_POLICIES),
  };
}

/** Size of the blocks lines are copied into; a longer message gets a block of its own. @default 256 KiB */
export const QUEUE_BLOCK_BYTES = 256 * 1024;

/**
 * Blocks shifted out and kept to be filled again, at most (4 MiB). A fresh
 * block is fresh memory to the kernel: every 4 KiB page of it faults on first
 * write, which on this VM cost more per line (100-280 ns) than the copy of
 * the line itself (#16).
 */
export const REUSED_BLOCKS = 16;

const LF = 0x0a;
const EMPTY = Buffer.alloc(0);
const MIN_RING = 1024;
/** A ring this large is given back once the queue is empty again. */
const SHRINK_RING = 64 * 1024;

export class LineQueue<R> implements OutboundQueue<R> {
  /** Lines dropped since creation, by the policy in force. */
  dropped = 0;
  // Ring of messages: the block holding each body, where in it, its length, lines and route.
  private bufs: (Buffer | undefined)[] = [];
  private routes: (R | undefined)[] = [];
  private offs = new Uint32Array(0);
  private lens = new Uint32Array(0);
  private counts = new Uint32Array(0);
  private mask = -1;
  private head = 0;
  private n = 0;
  /** Messages put back by unshift(), taken before the ring (last in, first out). */
  private front: QueuedMessage<R>[] = [];
  private peeked: QueuedMessage<R> | undefined;
  /** The block being filled. Views handed out stay valid: a block is written again only after reuseBlocks(), once free. */
  private block: Buffer | undefined;
  /** drain()'s message, filled in place. */
  private readonly cursor: MessageRange<R> = { route: undefined as R, buf: EMPTY, start: 0, end: 0, lines: 0, id: undefined };
  private used = 0;
  private bytesHeld = 0;
  private linesHeld = 0;
  /** reuseBlocks() was called: blocks shifted out are filled again once nothing holds them. */
  private reusing = false;
  private holder: BlockHolder | undefined;
  /** Blocks whose messages all left the ring, oldest first, waiting to be filled again. */
  private retired: Buffer[] = [];
  /** Fill order of the blocks in use or retired (a block filled again gets a new one). */
  private readonly serials = new Map<ArrayBufferLike, number>();
  private serial = 0;
  private readonly isBlock = (b: ArrayBufferLike): boolean => this.serials.has(b);

  constructor(
    readonly maxLines: number,
    readonly maxBytes: number,
    readonly policy: OverflowPolicy,
    private readonly onDrop: (lines: number) => void = () => {},
  ) {}

  /** Messages queued. */
  get length(): number {
    return this.n + this.front.length;
  }

  get lines(): number {
    return this.linesHeld;
  }

  get bytes(): number {
    return this.bytesHeld;
  }

  /** At or past a limit: under `block`, the moment to stop reading (the publisher asks only then). */
  get full(): boolean {
    return this.linesHeld >= this.maxLines || this.bytesHeld >= this.maxBytes;
  }

  /** At most half full in lines and bytes: under `block`, the moment to read again. */
  get roomy(): boolean {
    return this.linesHeld <= this.maxLines / 2 && this.bytesHeld <= this.maxBytes / 2;
  }

  /** Queue a copy of `body`. Returns false if it was the one dropped. */
  push(body: Uint8Array, route: R, lines = 1): boolean {
    const size = body.length;
    if (!this.admit(size, lines)) return false;
    const at = this.reserve(size);
    this.block!.set(body, at);
    this.record(at, size, route, lines);
    return true;
  }

  /** Queue `prefix + line + LF` as one message without building it first (the hot path). */
  pushLine(prefix: Uint8Array, line: Uint8Array, route: R): boolean {
    const size = prefix.length + line.length + 1;
    if (!this.admit(size, 1)) return false;
    const at = this.reserve(size);
    const b = this.block!;
    const n = prefix.length;
    // The host tag is a few bytes: copied here rather than by a call into the runtime per line.
    for (let i = 0; i < n; i++) b[at + i] = prefix[i]!;
    b.set(line, at + n);
    b[at + size - 1] = LF;
    this.record(at, size, route, 1);
    return true;
  }

  /**
   * Fill blocks again once their messages left the queue and `holder` (if
   * any) holds no range of them, instead of taking fresh memory for each.
   * Whoever takes a message must then be done with its bytes before the next
   * push (SpreadClient copies them as it sends), or hold them through
   * `holder`.
   */
  reuseBlocks(holder?: BlockHolder): void {
    this.reusing = true;
    this.holder = holder;
  }

  /** Put a message back in front (one that a dying session did not take). Never dropped. */
  unshift(m: QueuedMessage<R>): void {
    // A view of a block that may be filled again: the message keeps bytes of its own (rare: a failover, a full window).
    if (this.reusing && this.serials.has(m.body.buffer)) m = { ...m, body: Buffer.from(m.body) };
    this.front.push(m);
    this.bytesHeld += m.size;
    this.linesHeld += m.lines;
  }

  peek(): QueuedMessage<R> | undefined {
    if (this.front.length) return this.front[this.front.length - 1];
    if (this.n === 0) return undefined;
    if (!this.peeked) {
      const h = this.head;
      const off = this.offs[h]!;
      this.peeked = { body: this.bufs[h]!.subarray(off, off + this.lens[h]!), route: this.routes[h]!, lines: this.counts[h]!, size: this.lens[h]! };
    }
    return this.peeked;
  }

  shift(): QueuedMessage<R> | undefined {
    const m = this.peek();
    if (!m) return undefined;
    if (this.front.length) this.front.pop();
    else this.release();
    this.bytesHeld -= m.size;
    this.linesHeld -= m.lines;
    return m;
  }

  shiftInto(out: MessageRange<R>): boolean {
    // The hot path (one line per message): written out rather than peekInto() + discard().
    if (this.front.length || this.n === 0) {
      if (!this.peekInto(out)) return false;
      this.discard(out);
      return true;
    }
    const h = this.head;
    const off = this.offs[h]!;
    const len = this.lens[h]!;
    const lines = this.counts[h]!;
    out.route = this.routes[h]!;
    out.buf = this.bufs[h]!;
    out.start = off;
    out.end = off + len;
    out.lines = lines;
    out.id = undefined;
    this.bytesHeld -= len;
    this.linesHeld -= lines;
    this.release();
    return true;
  }

  /**
   * Hand messages from the front to `send` as (block, offset, length), until
   * it returns false or the queue is empty. A message leaves the queue once
   * `send` returns; one whose `send` throws stays first.
   */
  drain(send: (route: R, block: Buffer, off: number, len: number, lines: number) => boolean): void {
    const m = this.cursor;
    while (this.peekInto(m)) {
      const ok = send(m.route, m.buf, m.start, m.end - m.start, m.lines);
      this.discard(m);
      if (!ok) return;
    }
  }

  /**
   * Take the first message and the ones after it with the same route, up
   * to `maxBytes` and `maxLines` in all, as one body: a view when they lie
   * next to each other in one block (they do unless a block ended between
   * them), else a copy. A message put back by unshift() goes alone.
   */
  take(maxBytes: number, maxLines: number, noticesAlone = false): QueuedMessage<R> | undefined {
    const fromFront = this.front.length > 0;
    const first = this.shift();
    if (!first || fromFront || (noticesAlone && first.lines === 0)) return first;
    const route = first.route;
    let size = first.size;
    let lines = first.lines;
    // The current run of adjacent bytes, and the runs before it when a block ended in between.
    let runBuf = first.body.buffer;
    let runStart = first.body.byteOffset;
    let runEnd = runStart + first.size;
    const runs: Buffer[] = [];
    while (this.n > 0) {
      const h = this.head;
      const len = this.lens[h]!;
      const count = this.counts[h]!;
      if (this.routes[h] !== route || size + len > maxBytes || lines + count > maxLines || (noticesAlone && count === 0)) break;
      const b = this.bufs[h]!;
      const at = b.byteOffset + this.offs[h]!;
      if (b.buffer !== runBuf || at !== runEnd) {
        runs.push(Buffer.from(runBuf, runStart, runEnd - runStart));
        runBuf = b.buffer;
        runStart = runEnd = at;
      }
      runEnd += len;
      size += len;
      lines += count;
      this.bytesHeld -= len;
      this.linesHeld -= count;
      this.release();
    }
    // By size, not lines: a notice packed in adds bytes and no line.
    if (size === first.size) return first;
    const last = Buffer.from(runBuf, runStart, runEnd - runStart);
    return { body: runs.length ? Buffer.concat([...runs, last], size) : last, route, lines, size };
  }

  /** The first message, into `out`, left in the queue. */
  private peekInto(out: MessageRange<R>): boolean {
    if (this.front.length) {
      // A message put back keeps its line id, as peek() gives it.
      wholeRange(out, this.front[this.front.length - 1]!);
    } else if (this.n > 0) {
      const h = this.head;
      out.route = this.routes[h]!;
      out.buf = this.bufs[h]!;
      out.start = this.offs[h]!;
      out.end = out.start + this.lens[h]!;
      out.lines = this.counts[h]!;
      out.id = undefined;
    } else return false;
    return true;
  }

  /** Remove the first message, just peeked into `m`. */
  private discard(m: MessageRange<R>): void {
    if (this.front.length) this.front.pop();
    else this.release();
    this.bytesHeld -= m.end - m.start;
    this.linesHeld -= m.lines;
  }

  /** Remove everything (at exit, after the drain timeout), returning how many lines were removed. */
  clear(): number {
    const lines = this.linesHeld;
    this.front = [];
    this.peeked = undefined;
    this.bufs = [];
    this.routes = [];
    this.offs = this.lens = this.counts = new Uint32Array(0);
    this.mask = -1;
    this.head = this.n = 0;
    this.block = undefined;
    this.retired = [];
    this.serials.clear();
    this.bytesHeld = this.linesHeld = 0;
    return lines;
  }

  /** Make room for a message of `size` bytes and `lines` lines under the policy; false: drop it. */
  private admit(size: number, lines: number): boolean {
    if (size > this.maxBytes || lines > this.maxLines) return this.refuse(lines);
    if (this.policy === 'block') {
      if (this.linesHeld + lines > this.maxLines + BLOCK_SLACK_LINES || this.bytesHeld + size > this.maxBytes + BLOCK_SLACK_BYTES) return this.refuse(lines);
      return true;
    }
    while (this.linesHeld + lines > this.maxLines || this.bytesHeld + size > this.maxBytes) {
      if (this.policy === 'drop-newest') return this.refuse(lines);
      const old = this.shift()!;
      this.dropped += old.lines;
      this.onDrop(old.lines);
    }
    return true;
  }

  private refuse(lines: number): false {
    this.dropped += lines;
    this.onDrop(lines);
    return false;
  }

  private reserve(size: number): number {
    if (!this.block || this.used + size > this.block.length) {
      const old = this.block;
      this.block = size <= QUEUE_BLOCK_BYTES && this.reusing ? (this.reusable() ?? this.fresh()) : Buffer.allocUnsafeSlow(Math.max(QUEUE_BLOCK_BYTES, size));
      this.used = 0;
      // The block left behind: retired at once if the ring holds none of its messages (its last went out already).
      if (old && this.reusing && (this.n === 0 || this.bufs[(this.head + this.n - 1) & this.mask] !== old)) this.retire(old);
    }
    const at = this.used;
    this.used += size;
    return at;
  }

  private record(off: number, size: number, route: R, lines: number): void {
    if (this.n > this.mask) this.grow();
    const i = (this.head + this.n) & this.mask;
    this.bufs[i] = this.block;
    this.routes[i] = route;
    this.offs[i] = off;
    this.lens[i] = size;
    this.counts[i] = lines;
    this.n++;
    this.bytesHeld += size;
    this.linesHeld += lines;
  }

  /** A new block, numbered in fill order. */
  private fresh(): Buffer {
    const b = Buffer.allocUnsafeSlow(QUEUE_BLOCK_BYTES);
    this.serials.set(b.buffer, this.serial++);
    return b;
  }

  /**
   * The oldest retired block, if nothing holds it: the holder holds nothing,
   * or its oldest range lies in a block filled later (it took ranges in
   * order, so it holds none of this one). It is asked for its oldest range
   * in a block of ours (BlockHolder); an answer that is no block of ours
   * (a holder that cannot tell) says nothing: wait.
   */
  private reusable(): Buffer | undefined {
    const b = this.retired[0];
    if (!b) return undefined;
    const held = this.holder?.(this.isBlock);
    if (held !== undefined && !((this.serials.get(held) ?? -1) > this.serials.get(b.buffer)!)) return undefined;
    this.retired.shift();
    this.serials.set(b.buffer, this.serial++);
    return b;
  }

  /** Every message of block `b` left the ring and it is not being filled: keep it for filling again (a few). */
  private retire(b: Buffer): void {
    if (b.length !== QUEUE_BLOCK_BYTES || !this.serials.has(b.buffer)) return;
    if (this.retired.length < REUSED_BLOCKS) this.retired.push(b);
    else this.serials.delete(b.buffer);
  }

  /** Drop the ring's first message (its block goes once no message refers to it). */
  private release(): void {
    const b = this.bufs[this.head]!;
    this.bufs[this.head] = undefined;
    this.routes[this.head] = undefined;
    this.head = (this.head + 1) & this.mask;
    this.peeked = undefined;
    if (--this.n === 0 && this.mask + 1 >= SHRINK_RING) {
      this.bufs = [];
      this.routes = [];
      this.offs = this.lens = this.counts = new Uint32Array(0);
      this.mask = -1;
      this.head = 0;
    }
    if (this.reusing && b !== this.block && (this.n === 0 || this.bufs[this.head] !== b)) this.retire(b);
  }

  private grow(): void {
    const cap = Math.max(MIN_RING, (this.mask + 1) * 2);
    const bufs = new Array<Buffer | undefined>(cap);
    const routes = new Array<R | undefined>(cap);
    const offs = new Uint32Array(cap);
    const lens = new Uint32Array(cap);
    const counts = new Uint32Array(cap);
    for (let k = 0; k < this.n; k++) {
      const i = (this.head + k) & this.mask;
      bufs[k] = this.bufs[i];
      routes[k] = this.routes[i];
      offs[k] = this.offs[i]!;
      lens[k] = this.lens[i]!;
      counts[k] = this.counts[i]!;
    }
    Object.assign(this, { bufs, routes, offs, lens, counts, mask: cap - 1, head: 0 });
  }
}
