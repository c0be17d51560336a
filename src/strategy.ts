/**
 * How queued messages become Spread messages: one line per message (the
 * default), batches (--batch), or the --ack window (reliable.ts), with or
 * without batches. Each is a small object over an OutboundQueue that yields
 * the next message to send, so the publisher's pump reads "next, send,
 * account" whatever the mode.
 *
 * A message is handed out as a range of a buffer (`Outgoing`, one object
 * reused from message to message): one line per message sends a range of a
 * queue block, with no view or object made per line. A message taken is out
 * of the queue; one that a dying session did not take goes back with
 * `putBack`.
 */
import { type MessageRange, type OutboundQueue, wholeRange } from './outbound.js';
import { type Reliable } from './reliable.js';
import { type PreparedSend, type SpreadClient } from './spread/client.js';
import { MAX_GROUP_NAME, SAFE_MESSAGE_BODY_LEN } from './spread/constants.js';

/** Lines per message at most with --ack, so a resent batch stays well inside receivers' windows. */
export const ACK_BATCH_LINES = 1024;

/** The message to send: `buf[start, end)`, its route, input lines and (from the spool) first line id. */
export type Outgoing = MessageRange<PreparedSend>;

/** next()'s answer when --ack ids jumped too far for receivers: take a new stream, then send. */
export const ROTATE = 'rotate';

export interface SendStrategy {
  /**
   * Take the next message to send now. Undefined: nothing to send, or it
   * must wait (a full ack window: an ack pumps again). The object is reused:
   * valid until the next call.
   */
  next(): Outgoing | typeof ROTATE | undefined;
  /** Send it on `c`: false once the session holds enough (wait for 'drain'). A throw sent nothing. */
  send(c: SpreadClient, m: Outgoing): boolean;
  /** Back in front of the queue, for the next session. */
  putBack(m: Outgoing): void;
}

export interface StrategyOptions {
  /** --batch: pack following lines into one message, up to this many bytes. */
  batchBytes?: number;
  /** --ack: send through the window. */
  reliable?: Reliable;
}

export function sendStrategy(queue: OutboundQueue<PreparedSend>, o: StrategyOptions): SendStrategy {
  if (o.reliable) return new AckWindowSends(queue, o.reliable, o.batchBytes);
  if (o.batchBytes !== undefined) return new Batches(queue, o.batchBytes);
  return new OnePerMessage(queue);
}

/** Largest body for `route` within `batchBytes`. */
export function maxBody(route: PreparedSend, batchBytes: number): number {
  return Math.min(batchBytes, SAFE_MESSAGE_BODY_LEN - route.numGroups * MAX_GROUP_NAME);
}

function emptyRange(): Outgoing {
  return { route: undefined as unknown as PreparedSend, buf: Buffer.alloc(0), start: 0, end: 0, lines: 0, id: undefined };
}

abstract class QueueSends implements SendStrategy {
  protected readonly out = emptyRange();

  constructor(protected readonly queue: OutboundQueue<PreparedSend>) {}

  abstract next(): Outgoing | typeof ROTATE | undefined;

  send(c: SpreadClient, m: Outgoing): boolean {
    return c.sendRange(m.route, m.buf, m.start, m.end);
  }

  putBack(m: Outgoing): void {
    const body = m.start === 0 && m.end === m.buf.length ? m.buf : m.buf.subarray(m.start, m.end);
    this.queue.unshift({ body, route: m.route, lines: m.lines, size: body.length, ...(m.id === undefined ? {} : { id: m.id }) });
  }

  /** `out` set to the whole of a message taken whole. */
  protected whole(m: { body: Buffer; route: PreparedSend; lines: number; size: number; id?: number } | undefined): Outgoing | undefined {
    if (!m) return undefined;
    return wholeRange(this.out, m);
  }
}

/** One line per message: the queue's ranges straight to the session. */
export class OnePerMessage extends QueueSends {
  next(): Outgoing | undefined {
    return this.queue.shiftInto(this.out) ? this.out : undefined;
  }
}

/** --batch: the first message and the ones after it to the same route, up to `batchBytes`. */
export class Batches extends QueueSends {
  constructor(
    queue: OutboundQueue<PreparedSend>,
    private readonly batchBytes: number,
  ) {
    super(queue);
  }

  next(): Outgoing | undefined {
    const first = this.queue.peek();
    return first && this.whole(this.queue.take(maxBody(first.route, this.batchBytes), Infinity));
  }
}

/**
 * --ack: a message goes when the window has room for it; with --batch it
 * packs as many lines as the window allows (at most ACK_BATCH_LINES). Every
 * message carries the id of its first line (the spool's record id, or the
 * next from Reliable's counter); markers (reliable.ts) acknowledge them.
 * One line per message takes its range straight from the queue, as
 * OnePerMessage does, and the window keeps that range: no object per line.
 */
export class AckWindowSends extends QueueSends {
  constructor(
    queue: OutboundQueue<PreparedSend>,
    private readonly reliable: Reliable,
    private readonly batchBytes: number | undefined,
  ) {
    super(queue);
  }

  next(): Outgoing | typeof ROTATE | undefined {
    const r = this.reliable;
    if (this.batchBytes === undefined) {
      const m = this.out;
      if (!this.queue.shiftInto(m)) return undefined;
      const verdict = r.admit(m.id ?? r.peekId(), m.lines || 1, m.end - m.start);
      if (verdict === 'send') return m;
      // Rare: the window is full (a marker is on its way) or ids jumped; it waits in front.
      this.putBack(m);
      return verdict === 'rotate' ? ROTATE : undefined;
    }
    const e = this.queue.peek();
    if (!e) return undefined;
    const first = e.id ?? r.peekId();
    const verdict = r.admit(first, e.lines, e.size);
    if (verdict !== 'send') return verdict === 'rotate' ? ROTATE : undefined;
    const maxLines = Math.max(1, Math.min(ACK_BATCH_LINES, r.room(first)));
    // A notice (no input lines) goes alone: its line id is its own.
    return this.whole(this.queue.take(maxBody(e.route, this.batchBytes), maxLines, true));
  }

  override send(c: SpreadClient, m: Outgoing): boolean {
    // A notice (no input lines) still takes one line id: receivers count its LF.
    const idLines = m.lines || 1;
    return this.reliable.send(c, m.route, m.buf, m.start, m.end, m.id ?? this.reliable.nextId(idLines), idLines);
  }
}
