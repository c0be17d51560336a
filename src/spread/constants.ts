/**
 * Spread client protocol constants (3.x / 4.x / 5.x wire format).
 * See ../shared/spread/PROTOCOL.md for the byte-level description.
 */

// Service type bits (PROTOCOL.md section 5).
export const UNRELIABLE_MESS = 0x00000001;
export const RELIABLE_MESS = 0x00000002;
export const FIFO_MESS = 0x00000004;
export const CAUSAL_MESS = 0x00000008;
export const AGREED_MESS = 0x00000010;
export const SAFE_MESS = 0x00000020;
export const REGULAR_MESS = 0x0000003f;
export const SELF_DISCARD = 0x00000040;

export const CAUSED_BY_JOIN = 0x00000100;
export const CAUSED_BY_LEAVE = 0x00000200;
export const CAUSED_BY_DISCONNECT = 0x00000400;
export const CAUSED_BY_NETWORK = 0x00000800;
export const REG_MEMB_MESS = 0x00001000;
export const TRANSITION_MESS = 0x00002000;
export const MEMBERSHIP_MESS = 0x00003f00;

export const JOIN_MESS = 0x00010000;
export const LEAVE_MESS = 0x00020000;
export const KILL_MESS = 0x00040000;
export const GROUPS_MESS = 0x00080000;
export const REJECT_MESS = 0x00400000;

/** Both bits set: little-endian writer; both clear: big-endian writer. */
export const ENDIAN_MARKER = 0x80000080;
/** Bits a daemon accepts in `hint` (anything else drops the session). */
export const HINT_ALLOWED = 0x80ffff80;

// Fixed sizes (PROTOCOL.md section 2).
export const HEADER_SIZE = 48;
export const MAX_GROUP_NAME = 32;
export const MAX_PRIVATE_NAME = 10;
export const MAX_PROC_NAME = 20;
export const MAX_GROUPS_PER_MESSAGE = 100;
/** What the libraries and daemons accept: data + 32 * groups. */
export const MAX_MESSAGE_BODY_LEN = 144000;
/**
 * Largest data + 32 * groups that every real daemon survives: 5.0.1 aborts
 * between 143152 and 144000 (PROTOCOL.md section 9), so a client that may
 * talk to any real daemon stays at or under this.
 */
export const SAFE_MESSAGE_BODY_LEN = 143151;
export const AUTH_NAME_SLOT = 30;
export const AUTH_METHODS = 3;
export const AUTH_CHOICE_LEN = AUTH_NAME_SLOT * AUTH_METHODS;

export const DEFAULT_SPREAD_PORT = 4803;
/** Directory of the daemon's unix sockets; compiled into real Spread. */
export const UNIX_SOCKET_DIR = '/tmp';

/** The client library version we announce: 5.0.1 has the modern handshake. */
export const LIBRARY_VERSION: readonly [number, number, number] = [5, 0, 1];
/** The daemon version our daemon announces. */
export const DAEMON_VERSION: readonly [number, number, number] = [5, 0, 1];

// Handshake result codes (PROTOCOL.md section 10); negative ones are sent as one signed byte.
export const ACCEPT_SESSION = 1;
export const ILLEGAL_SPREAD = -1;
export const COULD_NOT_CONNECT = -2;
export const REJECT_QUOTA = -3;
export const REJECT_NO_NAME = -4;
export const REJECT_ILLEGAL_NAME = -5;
export const REJECT_NOT_UNIQUE = -6;
export const REJECT_VERSION = -7;
export const CONNECTION_CLOSED = -8;
export const REJECT_AUTH = -9;
// Library-side codes (never on the wire), carried as SpreadPipeError.spreadCode.
export const ILLEGAL_SERVICE = -12;
export const ILLEGAL_GROUP = -14;
export const MESSAGE_TOO_LONG = -17;

export type ServiceName = 'unreliable' | 'reliable' | 'fifo' | 'causal' | 'agreed' | 'safe';

export const SERVICE_BY_NAME: Readonly<Record<ServiceName, number>> = {
  unreliable: UNRELIABLE_MESS,
  reliable: RELIABLE_MESS,
  fifo: FIFO_MESS,
  causal: CAUSAL_MESS,
  agreed: AGREED_MESS,
  safe: SAFE_MESS,
};

const BIT_NAMES: ReadonlyArray<[number, string]> = [
  [UNRELIABLE_MESS, 'UNRELIABLE'],
  [RELIABLE_MESS, 'RELIABLE'],
  [FIFO_MESS, 'FIFO'],
  [CAUSAL_MESS, 'CAUSAL'],
  [AGREED_MESS, 'AGREED'],
  [SAFE_MESS, 'SAFE'],
  [SELF_DISCARD, 'SELF_DISCARD'],
  [CAUSED_BY_JOIN, 'CAUSED_BY_JOIN'],
  [CAUSED_BY_LEAVE, 'CAUSED_BY_LEAVE'],
  [CAUSED_BY_DISCONNECT, 'CAUSED_BY_DISCONNECT'],
  [CAUSED_BY_NETWORK, 'CAUSED_BY_NETWORK'],
  [REG_MEMB_MESS, 'REG_MEMB'],
  [TRANSITION_MESS, 'TRANSITION'],
  [JOIN_MESS, 'JOIN'],
  [LEAVE_MESS, 'LEAVE'],
  [KILL_MESS, 'KILL'],
  [GROUPS_MESS, 'GROUPS'],
  [REJECT_MESS, 'REJECT'],
];

/** Human-readable list of the bits in a service type, e.g. "REG_MEMB|CAUSED_BY_JOIN". */
export function serviceBitsName(type: number): string {
  const names: string[] = [];
  for (const [bit, name] of BIT_NAMES) if (type & bit) names.push(name);
  return names.length ? names.join('|') : `0x${(type >>> 0).toString(16)}`;
}

/** A data message: one of the delivery bits, and not a reject (frameKind()'s 'data'). */
export function isDataType(type: number): boolean {
  return (type & REGULAR_MESS) !== 0 && (type & REJECT_MESS) === 0;
}

const REJECT_NAMES: Readonly<Record<number, string>> = {
  [REJECT_QUOTA]: 'REJECT_QUOTA',
  [REJECT_NO_NAME]: 'REJECT_NO_NAME',
  [REJECT_ILLEGAL_NAME]: 'REJECT_ILLEGAL_NAME',
  [REJECT_NOT_UNIQUE]: 'REJECT_NOT_UNIQUE',
  [REJECT_VERSION]: 'REJECT_VERSION',
  [REJECT_AUTH]: 'REJECT_AUTH',
};

export function rejectCodeName(code: number): string {
  return REJECT_NAMES[code] ?? `REJECT(${code})`;
}

/** True for the bytes legal in private and daemon names ('$'..'~'). */
export function isNameByte(b: number): boolean {
  return b >= 0x24 && b <= 0x7e;
}
