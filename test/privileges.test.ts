/**
 * #15: src/privileges.ts on its own: names looked up in passwd and group
 * files (by name, by number, unknown ones refused with a code), and the
 * drop's order and checks with a test policy for the process ids (the real
 * drop is tested with real processes in test/cli/user.test.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../src/errors.js';
import { type IdOps, type Identity, checkCanBecome, dropPrivileges, fileDatabase, lookupUser, systemDatabase } from '../src/privileges.js';
import { tempDir } from './helpers.js';

function db(): ReturnType<typeof fileDatabase> {
  const d = tempDir();
  fs.writeFileSync(path.join(d, 'passwd'), 'root:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n# a comment\nbroken line\nlogger:x:1001:4:log shipper:/:/bin/false\n');
  fs.writeFileSync(path.join(d, 'group'), 'root:x:0:\nadm:x:4:logger\nwww-data:x:33:\nlogs:x:1500:logger,www-data\n');
  return fileDatabase(path.join(d, 'passwd'), path.join(d, 'group'));
}

/** Process ids as a test policy: records the calls, fails the ones named in `fail`, or "succeeds" without effect. */
function fakeIds(start: Identity, opts: { fail?: string; noEffect?: boolean; regain?: boolean } = {}): IdOps & { calls: string[] } {
  const me = { ...start, groups: [...start.groups] };
  const calls: string[] = [];
  const op = (name: string, fn: () => void): void => {
    calls.push(name);
    if (opts.fail === name.split('(')[0]) throw Object.assign(new Error('EPERM, Operation not permitted'), { code: 'EPERM' });
    if (!opts.noEffect) fn();
  };
  return {
    calls,
    identity: () => ({ ...me, groups: [...me.groups] }),
    initgroups: (u, g) => op(`initgroups(${u},${g})`, () => (me.groups = [g])),
    setgid: (g) => op(`setgid(${g})`, () => (me.gid = me.egid = g)),
    setuid: (u) =>
      op(`setuid(${u})`, () => {
        if (u === 0 && me.euid !== 0 && !opts.regain) throw new Error('EPERM');
        me.uid = me.euid = u;
      }),
  };
}

const ROOT: Identity = { uid: 0, euid: 0, gid: 0, egid: 0, groups: [0] };

describe('#15: lookupUser', () => {
  it('#15: NAME, NAME:GROUP, numbers; the group defaults to the user\'s own', () => {
    const d = db();
    expect(lookupUser('www-data', d)).toEqual({ spec: 'www-data', name: 'www-data', uid: 33, gid: 33, group: 'www-data' });
    expect(lookupUser('logger:logs', d)).toMatchObject({ name: 'logger', uid: 1001, gid: 1500, group: 'logs' });
    expect(lookupUser('logger', d)).toMatchObject({ uid: 1001, gid: 4, group: 'adm' });
    expect(lookupUser('33', d)).toMatchObject({ name: 'www-data', uid: 33, gid: 33 });
    expect(lookupUser('www-data:4', d)).toMatchObject({ gid: 4, group: 'adm' });
    // Ids with no entry, as chown takes them: the group must then be given.
    expect(lookupUser('4242:4343', d)).toMatchObject({ name: '4242', uid: 4242, gid: 4343, group: '4343' });
  });

  it('#15: unknown users and groups, and bad forms, are INVALID_ARGUMENT', () => {
    const d = db();
    for (const [spec, msg] of [
      ['nobody-here', 'no user "nobody-here" on this machine'],
      ['www-data:nogroup-here', 'no group "nogroup-here" on this machine'],
      ['4242', 'uid 4242 has no entry in the user database: give its group too (4242:GID)'],
      ['a:b:c', 'expected NAME or NAME:GROUP, got "a:b:c"'],
      ['', 'expected NAME or NAME:GROUP, got ""'],
      ['www-data:', 'expected NAME or NAME:GROUP, got "www-data:"'],
    ] as const) {
      expect(() => lookupUser(spec, d), spec).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT, message: msg }));
    }
  });

  it('#15: the system database (getent) agrees with /etc/passwd for www-data and nobody', () => {
    const sys = systemDatabase();
    const files = fileDatabase();
    for (const u of ['www-data', 'nobody', 'root']) expect(lookupUser(u, sys)).toEqual(lookupUser(u, files));
    expect(() => lookupUser('no-such-user-here', sys)).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }));
  });
});

describe('#15: dropPrivileges', () => {
  const www = { spec: 'www-data', name: 'www-data', uid: 33, gid: 33, group: 'www-data' };

  it('#15: supplementary groups, then the group, then the user; then setuid(0) must fail', () => {
    const ids = fakeIds(ROOT);
    expect(dropPrivileges(www, ids)).toEqual({ uid: 33, euid: 33, gid: 33, egid: 33, groups: [33] });
    expect(ids.calls).toEqual(['initgroups(www-data,33)', 'setgid(33)', 'setuid(33)', 'setuid(0)']);
  });

  it('#15: any step that fails is refused with PRIVILEGES, naming it; the later steps are not tried', () => {
    for (const step of ['initgroups', 'setgid', 'setuid']) {
      const ids = fakeIds(ROOT, { fail: step });
      expect(() => dropPrivileges(www, ids), step).toThrow(expect.objectContaining({ code: ErrorCodes.PRIVILEGES, message: expect.stringMatching(new RegExp(`^--user www-data: ${step}\\(.*\\) failed: EPERM, Operation not permitted; refusing to go on with root's rights$`)) }));
      expect(ids.calls.at(-1)).toMatch(new RegExp(`^${step}\\(`));
    }
  });

  it('#15: a drop that "succeeds" but did not take, or root that can be had back, is refused', () => {
    expect(() => dropPrivileges(www, fakeIds(ROOT, { noEffect: true }))).toThrow(expect.objectContaining({ code: ErrorCodes.PRIVILEGES, message: '--user www-data: the drop did not take (uid 0/0, gid 0/0, setuid(0) succeeded afterwards); refusing to go on' }));
    expect(() => dropPrivileges(www, fakeIds(ROOT, { regain: true }))).toThrow(expect.objectContaining({ message: '--user www-data: the drop did not take (setuid(0) succeeded afterwards); refusing to go on' }));
  });

  it('#15: without root: the same user is no drop at all; another is refused before anything starts', () => {
    const me: Identity = { uid: 33, euid: 33, gid: 33, egid: 33, groups: [33] };
    const ids = fakeIds(me);
    expect(dropPrivileges(www, ids)).toEqual(me);
    expect(ids.calls).toEqual([]);
    const other = { ...www, spec: 'nobody', name: 'nobody', uid: 65534, gid: 65534 };
    expect(() => checkCanBecome(other, ids)).toThrow(expect.objectContaining({ code: ErrorCodes.PRIVILEGES, message: expect.stringMatching(/^--user nobody: cannot become uid 65534 gid 65534: this process runs as uid 33 gid 33, not as root/) }));
  });
});
