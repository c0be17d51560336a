/**
 * --spool in the publisher: the spool stands in for the in-memory queue.
 * Every line is appended to the spool as it is read (a write-ahead log: a
 * SIGKILL loses nothing that was read before the last event-loop turn), and
 * the publisher takes its messages back from it, from memory while the
 * backlog is short, from disk otherwise. Nothing is dropped for a full
 * queue: past --spool-max the oldest spooled lines go (counted by the spool).
 *
 * A line's record id is its --ack line id. The spool's cursor moves when
 * lines are acknowledged (--ack), or without --ack when the messages that
 * carried them were handed to the kernel (FlushTracker): what a crash leaves
 * unacknowledged is sent again by the next spread-pipe on the same spool.
 */
import { type MessageRange, type OutboundQueue, type QueuedMessage, wholeRange } from './outbound.js';
import { type Spool } from './spool.js';
import { type PreparedSend, prepareSend } from './spread/client.js';
import { readNameFields } from './spread/layout.js';
import type { SpreadClient } from './spread/client.js';

type Entry = QueuedMessage<PreparedSend>;

/** Routes remembered by their stored text. @default 10000 */
const MAX_ROUTES = 10_000;
/** Records taken from the spool at a time. */
const READ_AHEAD = 512;
const LF = Buffer.from('\n');

/** The stored text of a route: service type and group names, space-separated (spaces are illegal in names). */
export function routeText(p: PreparedSend): string {
  return `${p.type.toString(16)} ${readNameFields(p.groups, 0, p.numGroups).join(' ')}`;
}

export class SpoolQueue implements OutboundQueue<PreparedSend> {
  /** Records that came back without a usable route (written by a version that stored none, or damaged). */
  unroutable = 0;
  /** Records read from the spool (or put back) and not yet handed out, from `head` on. */
  private ahead: (Entry | undefined)[] = [];
  private head = 0;
  private aheadLines = 0;
  private readonly texts = new WeakMap<PreparedSend, string>();
  private readonly routes = new Map<string, PreparedSend>();

  constructor(
    readonly spool: Spool,
    /** Lines that could not be appended (disk error); they are lost, and counted by the caller. */
    private readonly onError: (lines: number) => void,
  ) {}

  get length(): number {
    return this.ahead.length - this.head + this.spool.unread;
  }

  /** Every record is one line. */
  get lines(): number {
    return this.aheadLines + this.spool.unread;
  }

  /** What the spool holds on disk (sent and unacknowledged included). */
  get bytes(): number {
    return this.spool.bytes;
  }

  /** Input never waits for the spool: past --spool-max it drops its oldest lines itself (counted). */
  get full(): boolean {
    return false;
  }

  get roomy(): boolean {
    return true;
  }

  /**
   * Append one body to the spool. No line count is stored: a record read
   * back is one line (a --gap-notice line through the spool is sent and
   * counted as a line, as README says).
   */
  push(body: Uint8Array, route: PreparedSend): boolean {
    let text = this.texts.get(route);
    if (text === undefined) {
      text = routeText(route);
      this.texts.set(route, text);
      if (this.routes.size < MAX_ROUTES) this.routes.set(text, route);
    }
    try {
      this.spool.append(Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.length), text);
    } catch {
      // The spool reported the error itself (an 'error' event); the line is lost.
      this.onError(1);
      return false;
    }
    return true;
  }

  pushLine(prefix: Uint8Array, line: Uint8Array, route: PreparedSend): boolean {
    return this.push(Buffer.concat([prefix, line, LF]), route);
  }

  /** Put back in front what a dying session did not take (it keeps its ids). */
  unshift(e: Entry): void {
    if (this.head > 0) this.ahead[--this.head] = e;
    else this.ahead.unshift(e);
    this.aheadLines += e.lines;
  }

  peek(): Entry | undefined {
    if (this.head >= this.ahead.length) this.fill();
    return this.ahead[this.head];
  }

  shift(): Entry | undefined {
    const e = this.peek();
    if (e) {
      this.ahead[this.head++] = undefined;
      this.aheadLines -= e.lines;
    }
    return e;
  }

  shiftInto(out: MessageRange<PreparedSend>): boolean {
    const e = this.shift();
    if (!e) return false;
    wholeRange(out, e);
    return true;
  }

  /** Records with the same route and contiguous ids, copied into one body. */
  take(maxBytes: number, maxLines: number, noticesAlone = false): Entry | undefined {
    const e = this.shift();
    if (!e) return undefined;
    const parts = [e.body];
    let size = e.size;
    let lines = e.lines;
    for (
      let n = this.peek();
      n && n.route === e.route && size + n.size <= maxBytes && lines + n.lines <= maxLines && (e.id === undefined || n.id === e.id + lines) && !(noticesAlone && (e.lines === 0 || n.lines === 0));
      n = this.peek()
    ) {
      parts.push(this.shift()!.body);
      size += n.size;
      lines += n.lines;
    }
    if (parts.length === 1) return e;
    return { body: Buffer.concat(parts, size), route: e.route, lines, size, ...(e.id === undefined ? {} : { id: e.id }) };
  }

  /** At exit: forget the read-ahead; what is unsent stays in the spool for the next run, so no line is lost. */
  clear(): number {
    this.ahead = [];
    this.head = this.aheadLines = 0;
    return 0;
  }

  private fill(): void {
    this.ahead = [];
    this.head = 0;
    for (const r of this.spool.read(READ_AHEAD)) {
      const route = r.route === undefined ? undefined : this.route(r.route);
      if (!route) {
        this.unroutable++;
        continue;
      }
      this.ahead.push({ body: r.data, route, lines: 1, size: r.data.length, id: r.id });
      this.aheadLines++;
    }
  }

  private route(text: string): PreparedSend | undefined {
    let p = this.routes.get(text);
    if (p) return p;
    const [type, ...names] = text.split(' ');
    try {
      p = prepareSend(names, { service: parseInt(type!, 16) });
    } catch {
      return undefined;
    }
    if (this.routes.size >= MAX_ROUTES) this.routes.clear();
    this.routes.set(text, p);
    this.texts.set(p, text);
    return p;
  }
}

/**
 * Without --ack: which spooled lines are safely out of the process. Each
 * message sent on a session is remembered with the id past its last line;
 * once the session has handed that many messages to the kernel, the spool
 * may forget those lines.
 */
export class FlushTracker {
  private ends: number[] = [];
  private head = 0;
  private base = 0;

  sent(end: number): void {
    this.ends.push(end);
  }

  /** The id below which every line has reached the kernel on session `c`, if it moved. */
  flushed(c: SpreadClient): number | undefined {
    const done = c.messagesSent - c.unsentMessages - this.base;
    let end: number | undefined;
    while (this.head < this.ends.length && this.head < done) end = this.ends[this.head++];
    if (this.head >= 1024 && this.head * 2 >= this.ends.length) {
      this.ends = this.ends.slice(this.head);
      this.base += this.head;
      this.head = 0;
    }
    return end;
  }

  /** A new session: its message count starts at zero. Returns the id past everything handed out before. */
  reset(): number | undefined {
    const last = this.ends[this.ends.length - 1];
    this.ends = [];
    this.head = 0;
    this.base = 0;
    return last;
  }
}
