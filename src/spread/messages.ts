/**
 * Classifying decoded frames and parsing membership bodies (PROTOCOL.md 7, 8).
 * Pure functions over Frame.
 */
import {
  CAUSED_BY_DISCONNECT,
  CAUSED_BY_JOIN,
  CAUSED_BY_LEAVE,
  CAUSED_BY_NETWORK,
  MAX_GROUP_NAME,
  MEMBERSHIP_MESS,
  REG_MEMB_MESS,
  isDataType,
  REJECT_MESS,
  TRANSITION_MESS,
} from './constants.js';
import type { Frame } from './decoder.js';
import { GROUP_ID_SIZE, MEMB_MY_VS_OFFSET, MEMB_NUM_VS_SETS, MEMB_OLD_COUNT, MEMB_OLD_NAMES, MEMB_VS_SETS, VS_SET_COUNT, readNameFields } from './layout.js';
import { ErrorCodes, SpreadPipeError } from '../errors.js';

export type FrameKind = 'data' | 'membership' | 'transitional' | 'self-leave' | 'reject' | 'unknown';

/** Classify as the 5.0.1 library does: regular first, since senders may set membership bits too. */
export function frameKind(type: number): FrameKind {
  if (type & REJECT_MESS) return 'reject';
  if (isDataType(type)) return 'data';
  if (type & MEMBERSHIP_MESS) {
    if (type & REG_MEMB_MESS) return 'membership';
    if (type & TRANSITION_MESS) return 'transitional';
    if (type & CAUSED_BY_LEAVE) return 'self-leave';
  }
  return 'unknown';
}

export type MembershipCause = 'join' | 'leave' | 'disconnect' | 'network';

export function membershipCause(type: number): MembershipCause | undefined {
  if (type & CAUSED_BY_JOIN) return 'join';
  if (type & CAUSED_BY_LEAVE) return 'leave';
  if (type & CAUSED_BY_DISCONNECT) return 'disconnect';
  if (type & CAUSED_BY_NETWORK) return 'network';
  return undefined;
}

export interface MembershipInfo {
  group: string;
  cause: MembershipCause | undefined;
  /** Three opaque words; compare all three. */
  groupId: [number, number, number];
  /** The whole membership after the change. */
  members: string[];
  /** vs-sets (4.x/5.x layout); the 3.x layout gives one set. */
  vsSets: string[][];
  /** Index of the receiver's own vs-set in vsSets. */
  myVsSet: number;
  /** For join/leave/disconnect: the member that joined, left or disconnected. */
  changedMember: string | undefined;
}

function bodyError(msg: string): SpreadPipeError {
  return new SpreadPipeError(ErrorCodes.PROTOCOL, `bad membership body: ${msg}`);
}

/**
 * Parse a regular membership message's body. `daemonMajor` selects the layout:
 * 3 -> gid, count, names; 4 and 5 -> gid, #sets, offset, sets. The real
 * libraries do not look at the version and misread the other layout; we do.
 * Integers are in the daemon's order, which is the header's order.
 */
export function parseMembership(f: Frame, daemonMajor: number): MembershipInfo {
  const b = f.data;
  const rd = (o: number): number => (f.bigEndianHeader ? b.readInt32BE(o) : b.readInt32LE(o));
  if (b.length < GROUP_ID_SIZE) throw bodyError(`${b.length} bytes, need a ${GROUP_ID_SIZE}-byte group id`);
  const groupId: [number, number, number] = [rd(0), rd(4), rd(8)];
  const cause = membershipCause(f.type);
  const vsSets: string[][] = [];
  let myVsSet = 0;
  if (daemonMajor <= 3) {
    if (b.length < MEMB_OLD_NAMES) throw bodyError('no member count');
    const n = rd(MEMB_OLD_COUNT);
    if (n < 0 || MEMB_OLD_NAMES + n * MAX_GROUP_NAME > b.length) throw bodyError(`count ${n} past the body`);
    vsSets.push(readNameFields(b, MEMB_OLD_NAMES, n));
  } else {
    if (b.length < MEMB_VS_SETS) throw bodyError('no vs-set count');
    const sets = rd(MEMB_NUM_VS_SETS);
    const myOffset = rd(MEMB_MY_VS_OFFSET);
    let off = MEMB_VS_SETS;
    for (let i = 0; i < sets; i++) {
      if (off - MEMB_VS_SETS === myOffset) myVsSet = i;
      if (off + VS_SET_COUNT > b.length) throw bodyError(`vs-set ${i} past the body`);
      const n = rd(off);
      if (n < 0 || off + VS_SET_COUNT + n * MAX_GROUP_NAME > b.length) throw bodyError(`vs-set ${i} count ${n} past the body`);
      vsSets.push(readNameFields(b, off + VS_SET_COUNT, n));
      off += VS_SET_COUNT + n * MAX_GROUP_NAME;
    }
  }
  const lightweight = cause === 'join' || cause === 'leave' || cause === 'disconnect';
  return {
    group: f.sender,
    cause,
    groupId,
    members: f.groups,
    vsSets,
    myVsSet,
    changedMember: lightweight ? vsSets[0]?.[0] : undefined,
  };
}

/** The group id of a transitional message (12-byte body). */
export function parseTransitional(f: Frame): [number, number, number] {
  if (f.data.length < GROUP_ID_SIZE) throw bodyError('transitional body shorter than a group id');
  const rd = (o: number): number => (f.bigEndianHeader ? f.data.readInt32BE(o) : f.data.readInt32LE(o));
  return [rd(0), rd(4), rd(8)];
}

/** What a client reports for one frame from its daemon. */
export type SpreadEvent =
  | { kind: 'data'; frame: Frame }
  | { kind: 'membership'; frame: Frame; info: MembershipInfo }
  | { kind: 'transitional'; frame: Frame; group: string; groupId: [number, number, number] }
  | { kind: 'self-leave'; frame: Frame; group: string }
  | { kind: 'reject'; frame: Frame; oldType: number };

/**
 * The event for a frame a daemon of major version `daemonMajor` sent, or
 * undefined for one a client cannot act on (real libraries ignore it too).
 * Throws SP_ERR_PROTOCOL on a bad membership body.
 */
export function frameEvent(frame: Frame, daemonMajor: number): SpreadEvent | undefined {
  switch (frameKind(frame.type)) {
    case 'data':
      return { kind: 'data', frame };
    case 'membership':
      return { kind: 'membership', frame, info: parseMembership(frame, daemonMajor) };
    case 'transitional':
      return { kind: 'transitional', frame, group: frame.sender, groupId: parseTransitional(frame) };
    case 'self-leave':
      return { kind: 'self-leave', frame, group: frame.sender };
    case 'reject':
      return { kind: 'reject', frame, oldType: frame.oldType ?? 0 };
    default:
      return undefined;
  }
}
