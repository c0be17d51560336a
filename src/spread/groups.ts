/**
 * The daemon's group table: who is in which group, and the membership
 * messages a change produces, encoded once per body layout.
 */
import { CAUSED_BY_DISCONNECT, CAUSED_BY_JOIN, CAUSED_BY_LEAVE } from './constants.js';
import { type GroupId, encodeMembership, encodeSelfLeave } from './encode.js';

/** What the group table needs to know of a session. */
export interface Member {
  readonly privateGroup: string;
  /** Asked for membership notices (connect flags bit 0). */
  readonly membership: boolean;
  /** Library major version: 3.x libraries get the old membership body. */
  readonly libraryMajor: number;
  readonly groups: Set<string>;
  deliver(buf: Buffer): void;
  /** Deliver `buf[start, end)`: the daemon's hot path forwards requests in place. */
  deliverRange(buf: Buffer, start: number, end: number): void;
}

interface Group {
  name: string;
  members: Map<string, Member>;
  /** The members as an array for the per-message fan-out; rebuilt after a change. */
  list: Member[] | null;
  counter: number;
}

export type Cause = 'join' | 'leave' | 'disconnect';

const CAUSE_BITS: Record<Cause, number> = { join: CAUSED_BY_JOIN, leave: CAUSED_BY_LEAVE, disconnect: CAUSED_BY_DISCONNECT };

export class GroupTable {
  private readonly groups = new Map<string, Group>();

  /**
   * @param ringId  first two words of every group id: one daemon is one ring
   *                configuration for its whole life.
   */
  constructor(private readonly ringId: readonly [number, number]) {}

  get size(): number {
    return this.groups.size;
  }

  /** Members of `name`, or undefined when nobody is in it. Do not modify. */
  members(name: string): readonly Member[] | undefined {
    const g = this.groups.get(name);
    if (!g) return undefined;
    return (g.list ??= [...g.members.values()]);
  }

  /** Group names with their member counts, for the operator's SIGUSR1 report. */
  summary(): Array<[string, number]> {
    return [...this.groups.values()].map((g) => [g.name, g.members.size]);
  }

  /** Returns false (and does nothing, as real Spread) if already a member. */
  join(m: Member, name: string): boolean {
    let g = this.groups.get(name);
    if (!g) {
      g = { name, members: new Map(), list: null, counter: 0 };
      this.groups.set(name, g);
    }
    if (g.members.has(m.privateGroup)) return false;
    g.members.set(m.privateGroup, m);
    g.list = null;
    m.groups.add(name);
    this.announce(g, 'join', m.privateGroup);
    return true;
  }

  /** Returns false (and does nothing) if not a member. */
  leave(m: Member, name: string): boolean {
    const g = this.groups.get(name);
    if (!g || !g.members.delete(m.privateGroup)) return false;
    g.list = null;
    m.groups.delete(name);
    if (m.membership) m.deliver(encodeSelfLeave(name));
    this.announce(g, 'leave', m.privateGroup);
    return true;
  }

  /** Remove a session from all its groups; the others see CAUSED_BY_DISCONNECT. */
  disconnect(m: Member): void {
    for (const name of m.groups) {
      const g = this.groups.get(name);
      if (!g) continue;
      g.members.delete(m.privateGroup);
      g.list = null;
      this.announce(g, 'disconnect', m.privateGroup);
    }
    m.groups.clear();
  }

  private announce(g: Group, cause: Cause, changed: string): void {
    if (g.members.size === 0) {
      this.groups.delete(g.name);
      return;
    }
    g.counter++;
    // One daemon: members ordered by name bytes (latin1 strings compare bytewise).
    const names = [...g.members.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const groupId: GroupId = [this.ringId[0], this.ringId[1], g.counter];
    const encoded: { vs?: Buffer; old?: Buffer } = {};
    for (const m of g.members.values()) {
      if (!m.membership) continue;
      const layout = m.libraryMajor <= 3 ? 'old' : 'vs';
      const buf = (encoded[layout] ??= encodeMembership({
        cause: CAUSE_BITS[cause],
        group: g.name,
        members: names,
        groupId,
        vsSets: [[changed]],
        layout,
      }));
      m.deliver(buf);
    }
  }
}
