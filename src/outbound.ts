/**
 * What the publisher sends from: one queued-message type and one queue
 * interface, implemented by the memory queue (queue.ts, `LineQueue`) and the
 * disk spool (spool-queue.ts, `SpoolQueue`). The sending strategies
 * (strategy.ts) and the publisher know a queue only through this interface.
 * Types, and the one helper that fills a range from a whole message; no
 * module here imports the publisher.
 */

/** One message to be: a body (one line, or several once batched) and its destinations. */
export interface QueuedMessage<R> {
  readonly body: Buffer;
  readonly route: R;
  /** Input lines in the body: 0 for a line that is not input (a --gap-notice line). */
  readonly lines: number;
  readonly size: number;
  /** Line id of the first line, when the queue gives ids (the spool's record ids). */
  readonly id?: number;
}

/**
 * Where a message lies: `buf[start, end)`. Filled in place by `shiftInto`,
 * so that the one-line-per-message path hands the session a range of a
 * queue block with no view or object made per line.
 */
export interface MessageRange<R> {
  route: R;
  buf: Buffer;
  start: number;
  end: number;
  lines: number;
  id: number | undefined;
}

/** Set `out` to the whole of `m` (a message taken whole, not a range of a block); returns `out`. */
export function wholeRange<R>(out: MessageRange<R>, m: QueuedMessage<R>): MessageRange<R> {
  out.route = m.route;
  out.buf = m.body;
  out.start = 0;
  out.end = m.size;
  out.lines = m.lines;
  out.id = m.id;
  return out;
}

/**
 * Who else may still read a queue block's bytes after its messages left the
 * queue: the buffer under the OLDEST range it holds in one of the queue's
 * blocks (`ours` tells which buffers those are), undefined when it holds none
 * there. Ranges are held in the order they were taken (the --ack window keeps
 * sent messages until acknowledged), so that block bounds all the others it
 * holds. Ranges in other buffers (a message put back is a copy, a record read
 * back from the spool) hold no block and are passed over: a window whose
 * oldest message was such a copy made every block look held, and the queue
 * took fresh memory for every block from then on (#16). A holder may return
 * a buffer that is not `ours` when it cannot tell: the queue then waits.
 * Without a holder the session copies what it sends (SpreadClient.sendRange),
 * so a block is free once shifted out.
 */
export type BlockHolder = (ours: (buffer: ArrayBufferLike) => boolean) => ArrayBufferLike | undefined;

export interface OutboundQueue<R> {
  /** Messages queued. */
  readonly length: number;
  /** Input lines queued. */
  readonly lines: number;
  readonly bytes: number;
  /** Input should wait (the block policy at its limit); never for a queue that takes everything. */
  readonly full: boolean;
  /** Input may go on again after `full`. */
  readonly roomy: boolean;
  /** Queue `body` (copied or stored: the caller may reuse it). False if it was the one dropped (counted by the queue). */
  push(body: Uint8Array, route: R, lines?: number): boolean;
  /** Queue `prefix + line + LF` as one message. */
  pushLine(prefix: Uint8Array, line: Uint8Array, route: R): boolean;
  peek(): QueuedMessage<R> | undefined;
  shift(): QueuedMessage<R> | undefined;
  /** shift() into `out` without making a view of the body; false when empty. */
  shiftInto(out: MessageRange<R>): boolean;
  /** Put a message back in front (one a dying session did not take). Never dropped. */
  unshift(m: QueuedMessage<R>): void;
  /**
   * The first message and the ones after it that may share its message (same
   * route; with ids, contiguous ids), up to `maxBytes` and `maxLines` in all,
   * as one body. `noticesAlone`: a message of no input lines is never packed
   * with another (with --ack every message's line ids are its LFs).
   */
  take(maxBytes: number, maxLines: number, noticesAlone?: boolean): QueuedMessage<R> | undefined;
  /**
   * Fill the memory blocks again once their messages were taken and `holder`
   * holds none of their bytes, instead of fresh memory for each block
   * (queue.ts). The caller must be done with a message's bytes when it takes
   * the next, or hold them through `holder`.
   */
  reuseBlocks(holder?: BlockHolder): void;
  /** At exit: forget what is queued; returns the lines lost by it (none for a spool, which keeps them). */
  clear(): number;
}
