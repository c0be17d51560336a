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
import { type Entry } from './publisher.js';
import { type Spool } from './spool.js';
import { type PreparedSend, prepareSend } from './spread/client.js';
import { readNameFields } from './spread/layout.js';
import type { SpreadClient } from './spread/client.js';

/** Routes remembered by their stored text. @default 10000 */
const MAX_ROUTES = 10_000;
/** Records taken from the spool at a time. */
const READ_AHEAD = 512;

/** The stored text of a route: service type and group names, space-separated (spaces are illegal in names). */
function routeText(p: PreparedSend): string {
  return `${p.type.toString(16)} ${readNameFields(p.groups, 0, p.numGroups).join(' ')}`;
}

export class SpoolQueue {
  /** Lines refused (none: a full spool drops its oldest lines itself). Kept for the queue interface. */
  dropped = 0;
  /** Records that came back without a usable route. */
  unroutable = 0;
  private ahead: Entry[] = [];
  private head = 0;
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

  get bytes(): number {
    return this.spool.bytes;
  }

  /** Append a line (one tagged body) to the spool. */
  push(e: Entry): boolean {
    let text = this.texts.get(e.route);
    if (text === undefined) {
      text = routeText(e.route);
      this.texts.set(e.route, text);
      if (this.routes.size < MAX_ROUTES) this.routes.set(text, e.route);
    }
    try {
      this.spool.append(e.body, text);
    } catch {
      // The spool reported the error itself (an 'error' event); the line is lost.
      this.onError(e.lines);
      return false;
    }
    return true;
  }

  /** Put back in front what a dying session did not take (it keeps its ids). */
  unshift(e: Entry): void {
    if (this.head > 0) this.ahead[--this.head] = e;
    else this.ahead.unshift(e);
  }

  peek(): Entry | undefined {
    if (this.head >= this.ahead.length) this.fill();
    return this.ahead[this.head];
  }

  shift(): Entry | undefined {
    const e = this.peek();
    if (e) this.ahead[this.head++] = undefined as unknown as Entry;
    return e;
  }

  /** At exit nothing is removed: what is unsent stays in the spool for the next run. */
  clear(): number {
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
