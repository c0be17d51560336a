/**
 * Incremental parsers for the unframed handshake units (PROTOCOL.md 3).
 * Each takes everything received so far and returns null while more bytes
 * are needed; callers keep any bytes past `consumed` (framed messages may
 * follow in the same read).
 */
import {
  AUTH_CHOICE_LEN,
  AUTH_METHODS,
  AUTH_NAME_SLOT,
  MAX_GROUP_NAME,
  MAX_PRIVATE_NAME,
  REJECT_AUTH,
  REJECT_ILLEGAL_NAME,
  REJECT_VERSION,
  isNameByte,
} from './constants.js';
import { ErrorCodes, SpreadPipeError } from '../errors.js';

export type Rejected = { kind: 'reject'; code: number };

/** Client side: the daemon's auth method list, or a negative reject code in its place. */
export function parseAuthList(b: Buffer): { kind: 'list'; methods: string[]; consumed: number } | Rejected | null {
  if (b.length < 1) return null;
  const n = b.readInt8(0);
  if (n < 0) return { kind: 'reject', code: n };
  if (n > AUTH_CHOICE_LEN) throw new SpreadPipeError(ErrorCodes.PROTOCOL, `auth list length ${n} > 90`);
  if (b.length < 1 + n) return null;
  const methods = b.toString('latin1', 1, 1 + n).split(' ').filter((m) => m.length > 0);
  return { kind: 'list', methods, consumed: 1 + n };
}

export interface Accepted {
  kind: 'accept';
  daemonVersion: [number, number, number];
  privateGroup: string;
  consumed: number;
}

/** Client side: accept reply (01 MAJ MIN [PAT] LEN NAME) or a reject byte. */
export function parseAccept(b: Buffer, withPatch = true): Accepted | Rejected | null {
  if (b.length < 1) return null;
  const code = b.readInt8(0);
  if (code < 0) return { kind: 'reject', code };
  if (code !== 1) throw new SpreadPipeError(ErrorCodes.PROTOCOL, `unexpected accept code ${code}`);
  const head = withPatch ? 5 : 4;
  if (b.length < head) return null;
  const len = b[head - 1]!;
  if (len >= MAX_GROUP_NAME) throw new SpreadPipeError(ErrorCodes.PROTOCOL, `private group length ${len} >= 32`);
  if (b.length < head + len) return null;
  return {
    kind: 'accept',
    daemonVersion: [b[1]!, b[2]!, withPatch ? b[3]! : 0],
    privateGroup: b.toString('latin1', head, head + len),
    consumed: head + len,
  };
}

export interface ConnectRequestParsed {
  kind: 'request';
  version: [number, number, number];
  /** The library sent a patch byte (3.15+), so the accept carries one too. */
  hasPatch: boolean;
  /** The library runs the auth exchange (3.16+). */
  needsAuth: boolean;
  membership: boolean;
  priority: number;
  /** Empty: the daemon must invent a name. */
  name: string;
  consumed: number;
}

const versionNumber = (maj: number, min: number, pat: number): number => maj * 10000 + min * 100 + pat;

/**
 * Daemon side: the connect request. Validation follows the real daemons:
 * REJECT_VERSION below 3.1.0, REJECT_ILLEGAL_NAME for a length outside 0..10
 * or an illegal character.
 */
export function parseConnectRequest(b: Buffer): ConnectRequestParsed | Rejected | null {
  if (b.length < 2) return null;
  const maj = b[0]!;
  const min = b[1]!;
  const hasPatch = versionNumber(maj, min, 0) > 31400;
  const off = hasPatch ? 3 : 2;
  if (b.length < off) return null;
  const pat = hasPatch ? b[2]! : 0;
  const v = versionNumber(maj, min, pat);
  if (v < 30100) return { kind: 'reject', code: REJECT_VERSION };
  if (b.length < off + 2) return null;
  const flags = b.readInt8(off);
  const len = b.readInt8(off + 1);
  if (len < 0 || len > MAX_PRIVATE_NAME) return { kind: 'reject', code: REJECT_ILLEGAL_NAME };
  if (b.length < off + 2 + len) return null;
  for (let i = 0; i < len; i++) {
    if (!isNameByte(b[off + 2 + i]!)) return { kind: 'reject', code: REJECT_ILLEGAL_NAME };
  }
  return {
    kind: 'request',
    version: [maj, min, pat],
    hasPatch,
    needsAuth: v >= 31600,
    membership: (flags & 1) === 1,
    priority: (flags >> 4) & 0x0f,
    name: b.toString('latin1', off + 2, off + 2 + len),
    consumed: off + 2 + len,
  };
}

/**
 * Daemon side: the 90-byte auth choice. The methods named before the first
 * empty slot, at most three; none, or one not in `enabled`, is REJECT_AUTH.
 */
export function parseAuthChoice(
  b: Buffer,
  enabled: readonly string[] = ['NULL'],
): { kind: 'auth'; methods: string[]; consumed: number } | Rejected | null {
  if (b.length < AUTH_CHOICE_LEN) return null;
  const methods: string[] = [];
  for (let i = 0; i < AUTH_METHODS; i++) {
    const s = i * AUTH_NAME_SLOT;
    if (b[s] === 0) break;
    let e = s;
    while (e < s + AUTH_NAME_SLOT && b[e] !== 0) e++;
    methods.push(b.toString('latin1', s, e));
  }
  if (methods.length === 0 || methods.some((m) => !enabled.includes(m))) return { kind: 'reject', code: REJECT_AUTH };
  return { kind: 'auth', methods, consumed: AUTH_CHOICE_LEN };
}
