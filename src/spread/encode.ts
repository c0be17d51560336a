/**
 * Pure encoders for every unit of the Spread client protocol, both directions.
 * No sockets, no state: each function returns (or fills) a Buffer.
 *
 * We always write little-endian with the little-endian marker, as every
 * x86/ARM libspread does; `bigEndian` exists for tests of the receive path.
 */
import {
  AUTH_CHOICE_LEN,
  AUTH_NAME_SLOT,
  AUTH_METHODS,
  CAUSED_BY_LEAVE,
  ENDIAN_MARKER,
  HEADER_SIZE,
  JOIN_MESS,
  KILL_MESS,
  LEAVE_MESS,
  LIBRARY_VERSION,
  MAX_GROUP_NAME,
  MAX_GROUPS_PER_MESSAGE,
  REG_MEMB_MESS,
  REJECT_MESS,
  TRANSITION_MESS,
} from './constants.js';
import {
  GROUP_ID_SIZE,
  HDR_DATA_LEN,
  HDR_HINT,
  HDR_NUM_GROUPS,
  HDR_SENDER,
  HDR_TYPE,
  HINT_MESS_TYPE_MASK,
  MEMB_MY_VS_OFFSET,
  MEMB_NUM_VS_SETS,
  MEMB_OLD_COUNT,
  MEMB_OLD_NAMES,
  MEMB_VS_SETS,
  REJECT_EXTRA,
  REJECT_OLD_TYPE,
  VS_SET_COUNT,
  groupsField,
  nameField,
} from './layout.js';

// The name field's encoders live with its readers in layout.ts.
export { groupsField, nameField };

/** hint = ((mess_type << 8) & 0x00FFFF00) | marker, as an unsigned value in the writer's order. */
export function encodeHint(messType: number, bigEndian = false): number {
  const v = (messType << 8) & HINT_MESS_TYPE_MASK;
  return (bigEndian ? v : (v | ENDIAN_MARKER)) >>> 0;
}

/**
 * encodeHint() (little-endian) as a signed 32-bit value, the same four bytes:
 * what the send path carries per message. V8 keeps it a small integer; the
 * unsigned value, with the endian bit (bit 31) set, is a heap number, and one
 * was allocated for every message it was passed on with (#16: --ack passes
 * one per message, plain mode its route's).
 */
export function wireHint(messType: number): number {
  return ((messType << 8) & HINT_MESS_TYPE_MASK) | ENDIAN_MARKER;
}

/** Total bytes of a framed message on the wire. */
export function messageSize(numGroups: number, dataLen: number, reject = false): number {
  return HEADER_SIZE + (reject ? REJECT_EXTRA : 0) + numGroups * MAX_GROUP_NAME + dataLen;
}

export interface ConnectRequest {
  /** Library version announced; two numbers for a pre-3.15 library. @default [5, 0, 1] */
  version?: readonly number[];
  /** Ask for group membership notices (flags bit 0). */
  membership: boolean;
  /** Priority, reduced to 0 or 1 like every real library. @default 0 */
  priority?: number;
  /** Private name, 0..10 bytes (0 lets the daemon choose). */
  name: string;
}

export function encodeConnectRequest(req: ConnectRequest): Buffer {
  const version = req.version ?? LIBRARY_VERSION;
  const name = Buffer.from(req.name, 'latin1');
  const flags = (req.membership ? 0x01 : 0) | ((req.priority ?? 0) > 0 ? 0x10 : 0);
  return Buffer.concat([Buffer.from(version), Buffer.from([flags, name.length & 0xff]), name]);
}

/** The 90-byte auth choice: three 30-byte NUL-padded slots. */
export function encodeAuthChoice(methods: readonly string[] = ['NULL']): Buffer {
  const out = Buffer.alloc(AUTH_CHOICE_LEN);
  methods.slice(0, AUTH_METHODS).forEach((m, i) => out.write(m, i * AUTH_NAME_SLOT, AUTH_NAME_SLOT - 1, 'latin1'));
  return out;
}

/** Daemon: the auth method list, each name followed by one space (`05 "NULL "`). */
export function encodeAuthList(methods: readonly string[] = ['NULL']): Buffer {
  const text = Buffer.from(methods.map((m) => `${m} `).join(''), 'latin1');
  return Buffer.concat([Buffer.from([text.length]), text]);
}

/** Daemon: accept reply; the patch byte only for libraries 3.15 and newer. */
export function encodeAccept(version: readonly number[], privateGroup: string, withPatch: boolean): Buffer {
  const name = Buffer.from(privateGroup, 'latin1');
  const head = withPatch ? [1, version[0]!, version[1]!, version[2]!] : [1, version[0]!, version[1]!];
  return Buffer.concat([Buffer.from([...head, name.length]), name]);
}

/** Daemon: a handshake reject is one signed byte. */
export function encodeRejectCode(code: number): Buffer {
  return Buffer.from([code & 0xff]);
}

/**
 * Write one framed message at `off` in `buf`, which must have room for
 * messageSize(groups, data). Returns the offset after it. This is the hot
 * path of the publisher: it encodes straight into a shared write buffer.
 */
export function writeMessage(
  buf: Buffer,
  off: number,
  type: number,
  sender: Buffer,
  groups: Buffer,
  hint: number,
  data: Buffer | Uint8Array,
): number {
  const numGroups = groups.length / MAX_GROUP_NAME;
  buf.writeUInt32LE((type | ENDIAN_MARKER) >>> 0, off + HDR_TYPE);
  sender.copy(buf, off + HDR_SENDER, 0, MAX_GROUP_NAME);
  buf.writeInt32LE(numGroups, off + HDR_NUM_GROUPS);
  buf.writeUInt32LE(hint >>> 0, off + HDR_HINT);
  buf.writeInt32LE(data.length, off + HDR_DATA_LEN);
  off += HEADER_SIZE;
  off += groups.copy(buf, off);
  buf.set(data, off);
  return off + data.length;
}

export interface MessageOptions {
  /** Signed 16-bit application message type. @default 0 */
  messType?: number;
  /** Write integers big-endian with the big-endian marker (tests only). @default false */
  bigEndian?: boolean;
  /** Raw hint to write instead of one derived from messType. */
  hint?: number;
}

/** Encode one framed message (data, join, leave or kill) as a new Buffer. */
export function encodeMessage(
  type: number,
  sender: string,
  groups: readonly string[],
  data: Buffer | Uint8Array = Buffer.alloc(0),
  opts: MessageOptions = {},
): Buffer {
  const g = groupsField(groups);
  const buf = Buffer.allocUnsafe(messageSize(groups.length, data.length));
  const hint = opts.hint ?? encodeHint(opts.messType ?? 0, opts.bigEndian);
  writeMessage(buf, 0, type, nameField(sender), g, hint, data);
  if (opts.bigEndian) {
    buf.writeUInt32BE((type & ~ENDIAN_MARKER) >>> 0, HDR_TYPE);
    buf.writeInt32BE(groups.length, HDR_NUM_GROUPS);
    buf.writeUInt32BE(hint >>> 0, HDR_HINT);
    buf.writeInt32BE(data.length, HDR_DATA_LEN);
  }
  return buf;
}

export function encodeJoin(sender: string, group: string): Buffer {
  return encodeMessage(JOIN_MESS, sender, [group]);
}

export function encodeLeave(sender: string, group: string): Buffer {
  return encodeMessage(LEAVE_MESS, sender, [group]);
}

/** Disconnect request; its group is the sender's own private group (5.0.1 zero-fills it). */
export function encodeKill(sender: string): Buffer {
  return encodeMessage(KILL_MESS, sender, [sender]);
}

/** A group id: three int32 words, opaque to clients. */
export type GroupId = readonly [number, number, number];

function writeGroupId(buf: Buffer, off: number, gid: GroupId): void {
  buf.writeInt32LE(gid[0] | 0, off);
  buf.writeInt32LE(gid[1] | 0, off + 4);
  buf.writeInt32LE(gid[2] | 0, off + 8);
}

export interface MembershipSpec {
  /** One of CAUSED_BY_JOIN / LEAVE / DISCONNECT / NETWORK. */
  cause: number;
  group: string;
  /** Full member list after the change, in delivery order. */
  members: readonly string[];
  groupId: GroupId;
  /** vs-sets; a lightweight change has one set holding the changed member. */
  vsSets: readonly (readonly string[])[];
  /** Index in vsSets of the receiver's own set. @default 0 */
  myVsSet?: number;
  /** 'vs' for 4.x/5.x libraries, 'old' (3.x: gid, count, names) for 3.x ones. @default 'vs' */
  layout?: 'vs' | 'old';
}

/** Daemon: a regular membership message (PROTOCOL.md 7.2). */
export function encodeMembership(m: MembershipSpec): Buffer {
  let body: Buffer;
  if (m.layout === 'old') {
    const names = m.vsSets.flat();
    body = Buffer.alloc(MEMB_OLD_NAMES + names.length * MAX_GROUP_NAME);
    writeGroupId(body, 0, m.groupId);
    body.writeInt32LE(names.length, MEMB_OLD_COUNT);
    groupsField(names).copy(body, MEMB_OLD_NAMES);
  } else {
    const setBytes = m.vsSets.map((s) => VS_SET_COUNT + s.length * MAX_GROUP_NAME);
    body = Buffer.alloc(MEMB_VS_SETS + setBytes.reduce((a, b) => a + b, 0));
    writeGroupId(body, 0, m.groupId);
    body.writeUInt32LE(m.vsSets.length, MEMB_NUM_VS_SETS);
    let myOffset = 0;
    for (let i = 0; i < (m.myVsSet ?? 0); i++) myOffset += setBytes[i]!;
    body.writeUInt32LE(myOffset, MEMB_MY_VS_OFFSET);
    let off = MEMB_VS_SETS;
    for (const set of m.vsSets) {
      body.writeUInt32LE(set.length, off);
      groupsField(set).copy(body, off + VS_SET_COUNT);
      off += VS_SET_COUNT + set.length * MAX_GROUP_NAME;
    }
  }
  return encodeMessage(REG_MEMB_MESS | m.cause, m.group, m.members, body);
}

/** Daemon: the self-leave notice, sent only to the member that left. */
export function encodeSelfLeave(group: string): Buffer {
  return encodeMessage(CAUSED_BY_LEAVE, group, []);
}

/** Daemon: a transitional membership message carrying the group id before the change. */
export function encodeTransitional(group: string, groupId: GroupId): Buffer {
  const body = Buffer.alloc(GROUP_ID_SIZE);
  writeGroupId(body, 0, groupId);
  return encodeMessage(TRANSITION_MESS, group, [], body);
}

export interface RejectSpec {
  /** The refused request's type as the daemon reports it (join -> CAUSED_BY_JOIN, ...). */
  oldType: number;
  /** The requester's private group name. */
  sender: string;
  /** The refused request's destinations; the requester's name is appended. */
  groups: readonly string[];
  hint: number;
  data: Buffer;
  /** SELF_DISCARD carried over from the refused message. */
  extraBits?: number;
}

/** Daemon: REJECT_MESS (PROTOCOL.md 7.5). */
export function encodeRejectMess(r: RejectSpec): Buffer {
  const groups = [...r.groups, r.sender].slice(0, MAX_GROUPS_PER_MESSAGE);
  if (r.groups.length >= MAX_GROUPS_PER_MESSAGE) groups[MAX_GROUPS_PER_MESSAGE - 1] = r.sender;
  const g = groupsField(groups);
  const buf = Buffer.allocUnsafe(messageSize(groups.length, r.data.length, true));
  buf.writeUInt32LE((REJECT_MESS | (r.extraBits ?? 0) | ENDIAN_MARKER) >>> 0, HDR_TYPE);
  nameField(r.sender).copy(buf, HDR_SENDER);
  buf.writeInt32LE(groups.length, HDR_NUM_GROUPS);
  buf.writeUInt32LE(r.hint >>> 0, HDR_HINT);
  buf.writeInt32LE(r.data.length, HDR_DATA_LEN);
  buf.writeUInt32LE((r.oldType | ENDIAN_MARKER) >>> 0, REJECT_OLD_TYPE);
  const groupsAt = REJECT_OLD_TYPE + REJECT_EXTRA;
  g.copy(buf, groupsAt);
  r.data.copy(buf, groupsAt + g.length);
  return buf;
}
