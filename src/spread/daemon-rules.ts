/**
 * The daemon's rules for client requests (PROTOCOL.md 9) and the header
 * conversion it applies before forwarding (4.2), kept apart from the session
 * bookkeeping so they can be read against the protocol text.
 */
import { ENDIAN_MARKER, HEADER_SIZE, JOIN_MESS, KILL_MESS, LEAVE_MESS, MAX_GROUP_NAME, MAX_MESSAGE_BODY_LEN, REGULAR_MESS, REJECT_MESS } from './constants.js';
import type { Frame } from './decoder.js';
import { HDR_DATA_LEN, HDR_HINT, HDR_NUM_GROUPS, HDR_SENDER, HDR_TYPE, HINT_MESS_TYPE_MASK, hintMessType, isLittleEndian, nameFieldEquals, readHeader } from './layout.js';
import { validateGroupName } from './address.js';

/**
 * Section 9 checks, in the real daemon's order; returns why the request is
 * refused. num_groups and data_len ranges are the decoder's (DAEMON_LIMITS),
 * since they decide how many bytes the request has.
 */
export function checkRequest(privateGroup: string, f: Frame): string | undefined {
  const svc = f.type & REGULAR_MESS;
  const req = f.type & (JOIN_MESS | LEAVE_MESS | KILL_MESS);
  if (popcount(svc) + popcount(req) !== 1) return `service type 0x${f.type.toString(16)} needs exactly one delivery or request bit`;
  if (f.sender !== privateGroup) return `sender "${f.sender}" is not this session (${privateGroup})`;
  if ((f.hint & ~HINT_MESS_TYPE_MASK) !== 0) return `hint 0x${f.hint.toString(16)} has reserved bits set`;
  if (f.data.length + MAX_GROUP_NAME * f.groups.length > MAX_MESSAGE_BODY_LEN - HEADER_SIZE) return 'message too long';
  if (req && f.groups.length !== 1) return `request with ${f.groups.length} groups`;
  // Real daemons take any join name (PROTOCOL.md 6.2); every library checks it,
  // so a bad one comes from a broken or hostile client, and would be a group
  // nobody can address or a private-group impostor.
  if (f.type & JOIN_MESS && !validGroup(f.groups[0]!)) return `join of illegal group name ${JSON.stringify(f.groups[0])}`;
  return undefined;
}

function validGroup(g: string): boolean {
  try {
    validateGroupName(g);
    return true;
  } catch {
    return false;
  }
}

function popcount(v: number): number {
  let n = 0;
  for (let x = v; x; x &= x - 1) n++;
  return n;
}

/** A big-endian client's header, converted as real daemons do: type, num_groups, data_len; not hint. */
export function toLittleEndianHeader(raw: Buffer): Buffer {
  const h = readHeader(raw, 0);
  const out = Buffer.from(raw);
  out.writeUInt32LE((h.type | ENDIAN_MARKER) >>> 0, HDR_TYPE);
  out.writeInt32LE(h.numGroups, HDR_NUM_GROUPS);
  out.writeInt32LE(h.dataLen, HDR_DATA_LEN);
  return out;
}

/**
 * The hot path's view of checkRequest: true only for a request that
 * checkRequest passes and that needs no conversion — a little-endian data
 * message (one delivery bit, no request or REJECT bit, at least one group)
 * from this session (`sender`: its private group's bytes) with a hint in
 * range. Everything else goes through the Frame path and checkRequest.
 */
export function isPlainMulticast(b: Buffer, off: number, sender: Uint8Array): boolean {
  const t = b.readUInt32LE(off + HDR_TYPE);
  if (!isLittleEndian(t)) return false;
  const svc = t & REGULAR_MESS;
  if (svc === 0 || (svc & (svc - 1)) !== 0 || t & (JOIN_MESS | LEAVE_MESS | KILL_MESS | REJECT_MESS)) return false;
  if (b.readInt32LE(off + HDR_NUM_GROUPS) < 1) return false;
  const h = b.readUInt32LE(off + HDR_HINT);
  if (!isLittleEndian(h) || ((h & ~ENDIAN_MARKER) & ~HINT_MESS_TYPE_MASK) !== 0) return false;
  // The sender field up to its NUL must be the private group.
  return nameFieldEquals(b, off + HDR_SENDER, sender);
}

/**
 * The Frame MessageDecoder makes of a request isPlainMulticast passed, from
 * what the hot path already knows (the sender is the session's private
 * group; `groups` its destinations): for taps, which take Frames.
 */
export function plainFrame(b: Buffer, off: number, end: number, sender: string, groups: readonly string[]): Frame {
  const hint = (b.readUInt32LE(off + HDR_HINT) & ~ENDIAN_MARKER) >>> 0;
  return {
    type: (b.readUInt32LE(off + HDR_TYPE) & ~ENDIAN_MARKER) >>> 0,
    sender,
    groups: [...groups],
    hint,
    messType: hintMessType(hint),
    endianMismatch: false,
    bigEndianHeader: false,
    oldType: undefined,
    data: b.subarray(off + HEADER_SIZE + groups.length * MAX_GROUP_NAME, end),
    raw: b.subarray(off, end),
  };
}
