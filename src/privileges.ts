/**
 * Least privilege (`--user NAME[:GROUP]`): look the user and group up
 * before anything starts, and once what needs root is open (ports under
 * 1024, unix sockets in root's directories, a spool directory root must
 * create), become that user for good: supplementary groups, then the group,
 * then the user (the order that still has the right to do the next step),
 * then check that it took and that root cannot be had back.
 *
 * Node has no getpwnam(3): names are looked up with getent(1), which asks
 * NSS as getpwnam does (so LDAP or sssd users work), and in /etc/passwd and
 * /etc/group where getent is missing (a minimal container). Numeric ids are
 * taken as they are, as chown(1) does, when no entry has that name.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { ErrorCodes, SpreadPipeError, errorMessage } from './errors.js';

export interface TargetUser {
  /** As given: `www-data`, `www-data:adm`, `33`. */
  spec: string;
  /** The user's name (initgroups needs it), or the uid as text for an id with no entry. */
  name: string;
  uid: number;
  gid: number;
  /** The group's name, or its gid as text. */
  group: string;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
}

interface GroupEntry {
  name: string;
  gid: number;
}

/** Where users and groups are looked up (tests give files of their own). */
export interface UserDatabase {
  user(key: string): PasswdEntry | undefined;
  group(key: string): GroupEntry | undefined;
}

const failed = (spec: string, detail: string, cause?: unknown): SpreadPipeError =>
  new SpreadPipeError(ErrorCodes.PRIVILEGES, `--user ${spec}: ${detail}`, cause === undefined ? undefined : { cause });

function parseLine(line: string | undefined): string[] | undefined {
  const f = line?.split(':');
  return f && f.length >= 3 && /^\d+$/.test(f[2]!) ? f : undefined;
}

function fromPasswd(f: string[] | undefined): PasswdEntry | undefined {
  return f && /^\d+$/.test(f[3] ?? '') ? { name: f[0]!, uid: Number(f[2]), gid: Number(f[3]) } : undefined;
}

function fromGroup(f: string[] | undefined): GroupEntry | undefined {
  return f ? { name: f[0]!, gid: Number(f[2]) } : undefined;
}

/** /etc/passwd and /etc/group read as files: by name, else by id. */
export function fileDatabase(passwdFile = '/etc/passwd', groupFile = '/etc/group'): UserDatabase {
  const lines = (file: string): string[][] => {
    try {
      return fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .map(parseLine)
        .filter((f): f is string[] => f !== undefined);
    } catch (e) {
      throw new SpreadPipeError(ErrorCodes.INVALID_ARGUMENT, `cannot read ${file}: ${errorMessage(e)}`, { cause: e });
    }
  };
  const find = (rows: string[][], key: string): string[] | undefined => rows.find((f) => f[0] === key) ?? (/^\d+$/.test(key) ? rows.find((f) => f[2] === key) : undefined);
  return {
    user: (key) => fromPasswd(find(lines(passwdFile), key)),
    group: (key) => fromGroup(find(lines(groupFile), key)),
  };
}

/** getent(1) (NSS, as getpwnam), or the files where there is no getent. */
export function systemDatabase(): UserDatabase {
  const files = fileDatabase();
  const getent = (db: 'passwd' | 'group', key: string): string[] | undefined | 'no-getent' => {
    try {
      return parseLine(execFileSync('getent', [db, key], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }).split('\n')[0]);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'no-getent';
      return undefined; // exit 2: no such entry
    }
  };
  return {
    user: (key) => {
      const f = getent('passwd', key);
      return f === 'no-getent' ? files.user(key) : fromPasswd(f);
    },
    group: (key) => {
      const f = getent('group', key);
      return f === 'no-getent' ? files.group(key) : fromGroup(f);
    },
  };
}

/**
 * `NAME[:GROUP]` looked up: the group defaults to the user's own. An
 * unknown user or group throws INVALID_ARGUMENT (a usage error).
 */
export function lookupUser(spec: string, db: UserDatabase = systemDatabase()): TargetUser {
  const m = /^([^:\s]+)(?::([^:\s]+))?$/.exec(spec);
  if (!m) throw new SpreadPipeError(ErrorCodes.INVALID_ARGUMENT, `expected NAME or NAME:GROUP, got ${JSON.stringify(spec)}`);
  const [, u, g] = m as unknown as [string, string, string | undefined];
  const pw = db.user(u);
  if (!pw && !/^\d+$/.test(u)) throw new SpreadPipeError(ErrorCodes.INVALID_ARGUMENT, `no user "${u}" on this machine`);
  if (!pw && g === undefined) throw new SpreadPipeError(ErrorCodes.INVALID_ARGUMENT, `uid ${u} has no entry in the user database: give its group too (${u}:GID)`);
  let group: GroupEntry | undefined;
  if (g !== undefined) {
    group = db.group(g) ?? (/^\d+$/.test(g) ? { name: g, gid: Number(g) } : undefined);
    if (!group) throw new SpreadPipeError(ErrorCodes.INVALID_ARGUMENT, `no group "${g}" on this machine`);
  } else {
    group = db.group(String(pw!.gid)) ?? { name: String(pw!.gid), gid: pw!.gid };
  }
  const uid = pw ? pw.uid : Number(u);
  return { spec, name: pw ? pw.name : u, uid, gid: group.gid, group: group.name };
}

/** The process as it is now: real and effective ids, supplementary groups. */
export interface Identity {
  uid: number;
  euid: number;
  gid: number;
  egid: number;
  groups: number[];
}

/** What the process can do to its ids (tests need no fakes: real failures come from setpriv). */
export interface IdOps {
  identity(): Identity;
  initgroups(user: string, gid: number): void;
  setgid(gid: number): void;
  setuid(uid: number): void;
}

export const processIds: IdOps = {
  identity: () => ({ uid: process.getuid!(), euid: process.geteuid!(), gid: process.getgid!(), egid: process.getegid!(), groups: process.getgroups!() }),
  // In Node since 0.9 (POSIX), though @types/node 20 leaves it out.
  initgroups: (user, gid) => (process as unknown as { initgroups(u: string, g: number): void }).initgroups(user, gid),
  setgid: (gid) => process.setgid!(gid),
  setuid: (uid) => process.setuid!(uid),
};

/**
 * Checked before anything starts: without root only the user one already
 * is can be "dropped to". Throws PRIVILEGES (exit 1) otherwise.
 */
export function checkCanBecome(target: TargetUser, ids: IdOps = processIds): void {
  const me = ids.identity();
  if (me.euid === 0) return;
  if (me.uid === target.uid && me.euid === target.uid && me.gid === target.gid && me.egid === target.gid) return;
  throw failed(target.spec, `cannot become uid ${target.uid} gid ${target.gid}: this process runs as uid ${me.euid} gid ${me.egid}, not as root (start it as root, or leave --user out)`);
}

/**
 * Become `target` for good. Throws PRIVILEGES naming the step that failed,
 * or the check that shows the drop did not take: the caller must stop.
 */
export function dropPrivileges(target: TargetUser, ids: IdOps = processIds): Identity {
  const before = ids.identity();
  if (before.euid !== 0) {
    checkCanBecome(target, ids);
    return before;
  }
  const step = (what: string, fn: () => void): void => {
    try {
      fn();
    } catch (e) {
      throw failed(target.spec, `${what} failed: ${errorMessage(e)}; refusing to go on with root's rights`, e);
    }
  };
  // Supplementary groups first (root's own would stay otherwise), then the group while still root, then the user.
  step(`initgroups(${target.name}, ${target.gid})`, () => ids.initgroups(target.name, target.gid));
  step(`setgid(${target.gid})`, () => ids.setgid(target.gid));
  step(`setuid(${target.uid})`, () => ids.setuid(target.uid));
  const now = ids.identity();
  const wrong: string[] = [];
  if (now.uid !== target.uid || now.euid !== target.uid) wrong.push(`uid ${now.uid}/${now.euid}`);
  if (now.gid !== target.gid || now.egid !== target.gid) wrong.push(`gid ${now.gid}/${now.egid}`);
  if (target.uid !== 0) {
    let regained = false;
    try {
      ids.setuid(0);
      regained = true;
    } catch {
      // As it must.
    }
    if (regained) wrong.push('setuid(0) succeeded afterwards');
  }
  if (wrong.length) throw failed(target.spec, `the drop did not take (${wrong.join(', ')}); refusing to go on`);
  return now;
}

/**
 * Give what we just created as root (a unix socket, a spool directory) to
 * `target`, so that it can still remove or fill it after the drop. Only
 * the path itself, never followed through a symlink.
 */
export function handOver(path: string, target: TargetUser, keepGroup = false): void {
  try {
    fs.lchownSync(path, target.uid, keepGroup ? -1 : target.gid);
  } catch (e) {
    throw failed(target.spec, `cannot give ${path} to ${target.name}: ${errorMessage(e)}`, e);
  }
}
