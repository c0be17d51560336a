/**
 * The daemon's group table on its own (#12): no sockets, members are plain
 * objects that keep what they are given; the membership messages are decoded
 * with the client's own parser.
 */
import { describe, expect, it } from 'vitest';
import { GroupTable, type Member } from '../../src/spread/groups.js';
import { frameKind, parseMembership } from '../../src/spread/messages.js';
import { decodeAll } from './util.js';

interface FakeMember extends Member {
  got: Buffer[];
}

function member(name: string, membership = true, libraryMajor = 5): FakeMember {
  const got: Buffer[] = [];
  return {
    privateGroup: `#${name}#d`,
    membership,
    libraryMajor,
    groups: new Set(),
    got,
    deliver: (b) => void got.push(b),
    deliverRange: (b, s, e) => void got.push(b.subarray(s, e)),
  };
}

/** The membership notices `m` got, decoded for its library's layout, then forgotten. */
function notices(m: FakeMember): Array<{ kind: string; group: string; cause?: string; members: string[]; changed?: string; groupId: number[]; sets: string[][] }> {
  const out = m.got.flatMap((b) => decodeAll(b)).map((f) => {
    const kind = frameKind(f.type);
    if (kind !== 'membership') return { kind, group: f.groups[0] ?? f.sender, members: [], groupId: [], sets: [] };
    const info = parseMembership(f, m.libraryMajor);
    return { kind, group: info.group, cause: info.cause, members: info.members, changed: info.changedMember, groupId: info.groupId, sets: info.vsSets };
  });
  m.got.length = 0;
  return out;
}

describe('GroupTable (#12: unit tests for groups.ts)', () => {
  it('join, leave and disconnect: members in name order, the changed member named, one counter per group', () => {
    const t = new GroupTable([7, 1000]);
    const bob = member('bob');
    const alice = member('alice');
    expect(t.join(bob, 'g')).toBe(true);
    expect(notices(bob)).toEqual([{ kind: 'membership', group: 'g', cause: 'join', members: ['#bob#d'], changed: '#bob#d', groupId: [7, 1000, 1], sets: [['#bob#d']] }]);
    expect(t.join(alice, 'g')).toBe(true);
    for (const m of [alice, bob]) {
      expect(notices(m)).toEqual([{ kind: 'membership', group: 'g', cause: 'join', members: ['#alice#d', '#bob#d'], changed: '#alice#d', groupId: [7, 1000, 2], sets: [['#alice#d']] }]);
    }
    expect(t.members('g')).toEqual([bob, alice]);
    expect(t.summary()).toEqual([['g', 2]]);

    expect(t.leave(alice, 'g')).toBe(true);
    expect(alice.groups.has('g')).toBe(false);
    expect(notices(alice).map((n) => n.kind)).toEqual(['self-leave']);
    expect(notices(bob)).toEqual([{ kind: 'membership', group: 'g', cause: 'leave', members: ['#bob#d'], changed: '#alice#d', groupId: [7, 1000, 3], sets: [['#alice#d']] }]);

    t.join(alice, 'g');
    t.join(alice, 'h');
    notices(alice);
    notices(bob);
    t.disconnect(alice);
    expect(alice.groups.size).toBe(0);
    expect(notices(alice)).toEqual([]);
    expect(notices(bob)).toEqual([{ kind: 'membership', group: 'g', cause: 'disconnect', members: ['#bob#d'], changed: '#alice#d', groupId: [7, 1000, 5], sets: [['#alice#d']] }]);
    // 'h' had only alice: it is gone, with no one to tell.
    expect(t.members('h')).toBeUndefined();
    expect(t.summary()).toEqual([['g', 1]]);
  });

  it('joining twice and leaving a group one is not in change nothing and send nothing, as real Spread', () => {
    const t = new GroupTable([1, 2]);
    const a = member('a');
    t.join(a, 'g');
    notices(a);
    expect(t.join(a, 'g')).toBe(false);
    expect(t.leave(a, 'other')).toBe(false);
    expect(a.got).toEqual([]);
    expect(t.members('g')).toHaveLength(1);
  });

  it('the last member leaving removes the group; a new join starts it afresh', () => {
    const t = new GroupTable([1, 2]);
    const a = member('a');
    t.join(a, 'g');
    t.leave(a, 'g');
    expect(t.size).toBe(0);
    expect(t.members('g')).toBeUndefined();
    notices(a);
    t.join(a, 'g');
    expect(notices(a)[0]!.groupId).toEqual([1, 2, 1]);
  });

  it('sessions without membership notices get none; 3.x libraries get the old body, encoded once per layout', () => {
    const t = new GroupTable([1, 2]);
    const quiet = member('quiet', false);
    const old1 = member('old1', true, 3);
    const old2 = member('old2', true, 3);
    const modern = member('modern', true, 5);
    for (const m of [quiet, old1, old2, modern]) t.join(m, 'g');
    for (const m of [quiet, old1, old2, modern]) m.got.length = 0;
    t.leave(quiet, 'g');
    expect(quiet.got).toEqual([]); // not even its own self-leave
    expect(old1.got[0]).toBe(old2.got[0]); // one buffer for both 3.x members
    expect(old1.got[0]!.equals(modern.got[0]!)).toBe(false);
    for (const m of [old1, old2, modern]) {
      expect(notices(m)).toEqual([
        { kind: 'membership', group: 'g', cause: 'leave', members: ['#modern#d', '#old1#d', '#old2#d'], changed: '#quiet#d', groupId: [1, 2, 5], sets: [['#quiet#d']] },
      ]);
    }
  });

  it('members() is rebuilt after a change and kept between changes (the fan-out list)', () => {
    const t = new GroupTable([1, 2]);
    const a = member('a');
    const b = member('b');
    t.join(a, 'g');
    const first = t.members('g');
    expect(t.members('g')).toBe(first);
    t.join(b, 'g');
    expect(t.members('g')).not.toBe(first);
    expect(t.members('g')).toEqual([a, b]);
  });
});
