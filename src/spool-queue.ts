/**
 * --spool in the publisher: the spool stands in for the in-memory queue.
 * Every line is appended to the spool as it is read (a write-ahead log: the
 * spool frames it straight into its write buffer and writes once per
 * event-loop turn, so a SIGKILL loses nothing that was read before the last
 * turn; no system call per line), and the publisher takes its messages back
 * from memory while the spool is not needed: the lines just appended are
 * also kept in a LineQueue (blocks, no object per line) and handed out from
 * there, so the disk is only read back after a restart or once the backlog
 * outgrew the memory budget. Nothing is dropped for a full queue: past
 * --spool-max the oldest spooled lines go (counted by the spool), from
 * memory too.
 *
 * A line's record id is its --ack line id. The spool's cursor moves when
 * lines are acknowledged (--ack), or without --ack when the messages that
 * carried them were handed to the kernel (FlushTracker): what a crash leaves
 * unacknowledged is sent again by the next spread-pipe on the same spool.
 */
import { type BlockHolder, type MessageRange, type OutboundQueue, type QueuedMessage, wholeRange } from './outbound.js';
import { LineQueue } from './queue.js';
import { DEFAULT_SPOOL_MEMORY, type Spool } from './spool.js';
import { type PreparedSend, prepareSend } from './spread/client.js';
import { readNameFields } from './spread/layout.js';
import type { SpreadClient } from './spread/client.js';

type Entry = QueuedMessage<PreparedSend>;

/** Routes remembered by their stored text. @default 10000 */
const MAX_ROUTES = 10_000;
/** Records taken from the spool at a time. */
const READ_AHEAD = 512;

/** The stored text of a route: service type and group names, space-separated (spaces are illegal in names). */
export function routeText(p: PreparedSend): string {
  return `${p.type.toString(16)} ${readNameFields(p.groups, 0, p.numGroups).join(' ')}`;
}

export class SpoolQueue implements OutboundQueue<PreparedSend> {
  /** Records that came back without a usable route (written by a version that stored none, or damaged). */
  unroutable = 0;
  /** Records read from the disk (or put back) and not yet handed out, from `head` on. */
  private ahead: (Entry | undefined)[] = [];
  private head = 0;
  private aheadLines = 0;
  /**
   * The records appended last, [memFirst, memFirst + mem.length), in memory.
   * While `inSync` every record appended goes there too; once the backlog
   * outgrows `memoryBytes` appends go to disk only, and mem is taken first,
   * then the disk, until the reader has caught up with the writer.
   */
  private readonly mem: LineQueue<PreparedSend>;
  private memFirst: number;
  private inSync: boolean;
  private readonly texts = new WeakMap<PreparedSend, string>();
  private readonly routes = new Map<string, PreparedSend>();
  private lastRoute: PreparedSend | undefined;
  private lastText = '';
  private reusing = false;

  constructor(
    readonly spool: Spool,
    /** Lines that could not be appended (disk error); they are lost, and counted by the caller. */
    private readonly onError: (lines: number) => void,
    private readonly memoryBytes = DEFAULT_SPOOL_MEMORY,
  ) {
    // One copy in memory is enough: ours.
    spool.keepInMemory(false);
    this.mem = new LineQueue<PreparedSend>(2 ** 31 - 1, Math.max(1, memoryBytes) * 2, 'drop-newest');
    this.memFirst = spool.nextRecordId;
    this.inSync = spool.unread === 0;
  }

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
    const text = this.textOf(route);
    let id: number;
    try {
      id = this.spool.append(Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.length), text);
    } catch {
      // The spool reported the error itself (an 'error' event); the line is lost.
      this.onError(1);
      return false;
    }
    if (this.keeps(id, body.length)) this.mem.push(body, route, 1);
    return true;
  }

  pushLine(prefix: Uint8Array, line: Uint8Array, route: PreparedSend): boolean {
    const text = this.textOf(route);
    let id: number;
    try {
      id = this.spool.appendLine(prefix, line, text);
    } catch {
      this.onError(1);
      return false;
    }
    if (this.keeps(id, prefix.length + line.length + 1)) this.mem.pushLine(prefix, line, route);
    return true;
  }

  /** The memory copy's blocks are filled again once sent (and, with a holder, let go): LineQueue.reuseBlocks(). */
  reuseBlocks(holder?: BlockHolder): void {
    this.reusing = true;
    this.mem.reuseBlocks(holder);
  }

  /** Put back in front what a dying session did not take (it keeps its ids). */
  unshift(e: Entry): void {
    // It may be a view of a memory block about to be filled again (LineQueue.unshift does the same).
    if (this.reusing) e = { ...e, body: Buffer.from(e.body) };
    if (this.head > 0) this.ahead[--this.head] = e;
    else this.ahead.unshift(e);
    this.aheadLines += e.lines;
  }

  peek(): Entry | undefined {
    if (this.head < this.ahead.length) return this.ahead[this.head];
    if (this.fromMem()) {
      const m = this.mem.peek()!;
      return { body: m.body, route: m.route, lines: m.lines, size: m.size, id: this.memFirst };
    }
    this.fill();
    return this.ahead[this.head];
  }

  shift(): Entry | undefined {
    if (this.head >= this.ahead.length && this.fromMem()) {
      const m = this.mem.shift()!;
      return { body: m.body, route: m.route, lines: m.lines, size: m.size, id: this.took(1) };
    }
    const e = this.peek();
    if (e) {
      this.ahead[this.head++] = undefined;
      this.aheadLines -= e.lines;
    }
    return e;
  }

  /** The hot path (one line per message): a range of a memory block, no object made. */
  shiftInto(out: MessageRange<PreparedSend>): boolean {
    if (this.head >= this.ahead.length && this.fromMem()) {
      this.mem.shiftInto(out);
      out.id = this.took(1);
      return true;
    }
    const e = this.shift();
    if (!e) return false;
    wholeRange(out, e);
    return true;
  }

  /** Records with the same route and contiguous ids, as one body (from memory: a view when they lie together). */
  take(maxBytes: number, maxLines: number, noticesAlone = false): Entry | undefined {
    if (this.head >= this.ahead.length && this.fromMem()) {
      const m = this.mem.take(maxBytes, maxLines)!;
      return { body: m.body, route: m.route, lines: m.lines, size: m.size, id: this.took(m.lines) };
    }
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

  /**
   * At exit: forget what is in memory. What is unsent stays in the spool for
   * the next run, except lines read ahead whose segment the bound deleted
   * meanwhile: those are lost now, and returned to be counted.
   */
  clear(): number {
    const oldest = this.spool.oldestId;
    let lost = 0;
    for (let i = this.head; i < this.ahead.length; i++) {
      const e = this.ahead[i]!;
      if (e.id !== undefined && e.id < oldest) lost += Math.min(e.lines || 1, oldest - e.id);
    }
    this.ahead = [];
    this.head = this.aheadLines = 0;
    this.mem.clear();
    this.memFirst = this.spool.nextRecordId;
    return lost;
  }

  /** Record `id` was just appended (`size` bytes): keep a copy in memory too? */
  private keeps(id: number, size: number): boolean {
    // The bound deleted unread records (appending made room): memory lets go of them as well.
    this.trim();
    if (!this.inSync && this.mem.length === 0 && this.head >= this.ahead.length && this.spool.unread === 1) {
      // The reader caught up with the writer: memory serves again from this record on.
      this.inSync = true;
      this.memFirst = id;
    }
    if (!this.inSync) return false;
    if (id !== this.memFirst + this.mem.length || this.mem.bytes + size > this.memoryBytes) {
      this.inSync = false;
      return false;
    }
    return true;
  }

  /** Memory holds the next record the spool would hand out. */
  private fromMem(): boolean {
    if (this.mem.length === 0) return false;
    this.trim();
    return this.mem.length > 0 && this.memFirst === this.spool.readNext;
  }

  /** `n` records were taken from memory: the spool's reader goes past them. Returns the first one's id. */
  private took(n: number): number {
    // They are about to be sent, with their ids as --ack line ids: their records go to the file first
    // (one write(2) for all that are pending, not one per record). Written at the end of the turn
    // instead, a SIGKILL in between left the file without ids that had been on the wire, and the next
    // run gave them to new lines, which receivers then dropped as repeats (#16).
    this.spool.flush();
    const id = this.memFirst;
    this.memFirst += n;
    this.spool.advanceRead(this.memFirst);
    return id;
  }

  /** Drop from memory what the spool no longer holds unread (deleted by the bound, counted by the spool). */
  private trim(): void {
    const next = this.spool.readNext;
    while (this.mem.length > 0 && this.memFirst < next) {
      this.mem.shift();
      this.memFirst++;
    }
    if (this.mem.length === 0 && this.memFirst < next) this.memFirst = next;
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

  private textOf(route: PreparedSend): string {
    // Lines in a row mostly share one route: no WeakMap lookup for each.
    if (route === this.lastRoute) return this.lastText;
    let text = this.texts.get(route);
    if (text === undefined) {
      text = routeText(route);
      this.texts.set(route, text);
      if (this.routes.size < MAX_ROUTES) this.routes.set(text, route);
    }
    this.lastRoute = route;
    this.lastText = text;
    return text;
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
