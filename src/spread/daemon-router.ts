/**
 * The daemon's registry and router: private names, the group table, the
 * in-process taps, and the delivery of each request to its destinations
 * (PROTOCOL.md 6 and 9). No sockets: it works on RoutedSessions, so a unit
 * test drives it with plain objects. One daemon means one total order: each
 * request is routed to completion, in arrival order.
 */
import { JOIN_MESS, KILL_MESS, LEAVE_MESS, REGULAR_MESS, REJECT_NOT_UNIQUE, SELF_DISCARD } from './constants.js';
import type { Frame } from './decoder.js';
import { checkRequest, plainFrame, toLittleEndianHeader } from './daemon-rules.js';
import type { DaemonCounters } from './daemon-stats.js';
import type { CloseRequest } from './daemon-events.js';
import { GroupTable, type Member } from './groups.js';
import { HDR_TYPE } from './layout.js';

/** What the router needs of a session. */
export interface RoutedSession extends Member {
  /** Past its handshake and not cut off: private-group messages reach it. */
  readonly open: boolean;
  /** Stamp of the last message delivered here: a multicast to several groups delivers once. */
  mark: number;
  close(why: CloseRequest): void;
  /** Drop for breaking PROTOCOL.md 9 (reported by the session's close). */
  protocolError(why: string): void;
}

/** A subscriber inside the daemon process (the log writer): sees data messages to its group. */
export type Tap = (frame: Frame) => void;

export class DaemonRouter<S extends RoutedSession = RoutedSession> {
  private readonly byName = new Map<string, S>();
  private readonly table: GroupTable;
  private readonly taps = new Map<string, Tap[]>();
  private seq = 0;
  private nameSeq = 0;

  /**
   * @param ringId    first two words of every group id (see GroupTable)
   * @param counters  bumped in place: messagesIn, bytesIn, deliveries
   */
  constructor(
    readonly daemonName: string,
    ringId: readonly [number, number],
    private readonly counters: DaemonCounters,
  ) {
    this.table = new GroupTable(ringId);
  }

  /** Sessions holding a private name (past the connect request). */
  get size(): number {
    return this.byName.size;
  }

  sessions(): IterableIterator<S> {
    return this.byName.values();
  }

  /** Group names with their member counts. */
  groups(): Array<[string, number]> {
    return this.table.summary();
  }

  /** Claim a private name: the private group `#NAME#DAEMON`, or REJECT_NOT_UNIQUE. '' invents one. */
  claim(s: S, name: string): string | number {
    let n = name;
    if (n === '') {
      // Real daemons invent r<random>-<fd>; we have no fd, so a counter.
      do n = `r${Math.floor(Math.random() * 9999)}-${(this.nameSeq = (this.nameSeq + 1) % 1000)}`;
      while (this.byName.has(`#${n}#${this.daemonName}`));
    }
    const pg = `#${n}#${this.daemonName}`;
    if (this.byName.has(pg)) return REJECT_NOT_UNIQUE;
    this.byName.set(pg, s);
    return pg;
  }

  /** A session ended: its name is free again; if it was open, its groups' members see it leave. */
  release(s: S, wasOpen: boolean): void {
    if (s.privateGroup && this.byName.get(s.privateGroup) === s) this.byName.delete(s.privateGroup);
    if (wasOpen) this.table.disconnect(s);
  }

  /** A decoded request from an open session. */
  request(s: S, f: Frame): void {
    const why = checkRequest(s.privateGroup, f);
    if (why) return s.protocolError(why);
    this.counters.messagesIn++;
    this.counters.bytesIn += f.raw.length;
    const t = f.type;
    if (t & REGULAR_MESS) {
      const out = f.bigEndianHeader ? toLittleEndianHeader(f.raw) : f.raw;
      this.route(s, out, 0, out.length, f.type, f.groups, f);
    } else if (t & JOIN_MESS) this.table.join(s, f.groups[0]!);
    else if (t & LEAVE_MESS) this.table.leave(s, f.groups[0]!);
    else if (t & KILL_MESS) s.close({ text: 'disconnect requested', graceful: true });
  }

  /** The hot path: a checked plain multicast, forwarded as it came. */
  forward(s: S, buf: Buffer, off: number, end: number, groups: readonly string[]): void {
    this.counters.messagesIn++;
    this.counters.bytesIn += end - off;
    // Taps (the log writer) take a Frame: made only for a group that has one.
    let f: Frame | undefined;
    if (this.taps.size) for (const g of groups) if (this.taps.get(g)?.length) f ??= plainFrame(buf, off, end, s.privateGroup, groups);
    this.route(s, buf, off, end, buf.readUInt32LE(off + HDR_TYPE), groups, f);
  }

  /** Deliver `buf[off, end)` to the destinations' members once each (and to taps, given the Frame). */
  private route(s: S, buf: Buffer, off: number, end: number, type: number, groups: readonly string[], f: Frame | undefined): void {
    const skip = type & SELF_DISCARD ? s : undefined;
    // Each session is stamped with the message's number, so that one listed in several
    // destinations gets one copy, without a per-message set.
    const mark = ++this.seq;
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i]!;
      if (i > 0 && groups.indexOf(g) < i) continue; // listed twice: taps too see it once
      if (g.charCodeAt(0) === 0x23 /* # */) {
        const target = this.byName.get(g);
        if (target && target.open) this.send(target, buf, off, end, mark, skip);
        continue;
      }
      const members = this.table.members(g);
      if (members) for (let j = 0; j < members.length; j++) this.send(members[j] as S, buf, off, end, mark, skip);
      const taps = f && this.taps.get(g);
      if (taps) for (const tap of taps) tap(f);
    }
  }

  private send(m: S, buf: Buffer, off: number, end: number, mark: number, skip: S | undefined): void {
    if (m.mark === mark) return;
    m.mark = mark;
    if (m === skip) return;
    m.deliverRange(buf, off, end);
    this.counters.deliveries++;
  }

  /** Subscribe in-process to data messages sent to `group`; returns the unsubscriber. */
  tap(group: string, fn: Tap): () => void {
    const list = this.taps.get(group) ?? [];
    list.push(fn);
    this.taps.set(group, list);
    return () => this.taps.set(group, (this.taps.get(group) ?? []).filter((x) => x !== fn));
  }
}
