/**
 * What the publisher reports: its counters (every line accepted is sent or
 * dropped for a named reason), its events, and which send errors are the
 * session's fault rather than the message's.
 */
import type { NewStreamReason } from './reliable.js';
import { type ErrorCode, ErrorCodes, isSpreadPipeError } from './errors.js';

export type DropReason = 'queue-full' | 'lost-in-flight' | 'unsent-at-exit' | 'no-route' | 'spool-full' | 'spool-error' | 'unacked-at-exit' | 'rejected';

/**
 * Send errors that say the session, not the message, failed: the message is
 * kept for the next session. Any other error thrown by a send (a message the
 * protocol forbids, or one nobody foresaw) would fail again on every session:
 * the message is dropped as `rejected` rather than retried forever.
 */
const TRANSIENT_SEND_ERRORS: ReadonlySet<ErrorCode> = new Set([ErrorCodes.CONNECTION_CLOSED, ErrorCodes.NOT_CONNECTED, ErrorCodes.STALLED, ErrorCodes.PROTOCOL, ErrorCodes.ABORTED]);

export function isTransientSendError(e: unknown): boolean {
  return isSpreadPipeError(e) && TRANSIENT_SEND_ERRORS.has(e.code);
}

export interface Counters {
  /** Lines accepted by push(). */
  accepted: number;
  /** Lines handed to a daemon session and written to the kernel... or counted lost below. */
  linesSent: number;
  messagesSent: number;
  bytesSent: number;
  dropped: Record<DropReason, number>;
  /** --gap-notice lines queued by pushNotice(): not in accepted, linesSent or dropped. */
  notices: number;
  connects: number;
  disconnects: number;
  failovers: number;
  failbacks: number;
}

export type PublisherEvent =
  | { type: 'connecting'; daemon: string }
  | { type: 'connected'; daemon: string; privateGroup: string }
  | { type: 'connect-failed'; daemon: string; error: string; retryInMs: number | false }
  | { type: 'disconnected'; daemon: string; error: string; lost: number }
  | { type: 'failback'; daemon: string }
  | { type: 'drop'; reason: DropReason; lines: number; error?: string }
  /** onFull 'block': the queue is full, stop reading input; 'room': read again. */
  | { type: 'full' }
  | { type: 'room' }
  | { type: 'gave-up'; error: string }
  /** --ack took a new stream name (see reliable.ts). */
  | { type: 'new-stream'; name: string; abandoned: number; why: NewStreamReason }
  | { type: 'spool-error'; message: string };

export function newCounters(): Counters {
  return {
    accepted: 0,
    linesSent: 0,
    messagesSent: 0,
    bytesSent: 0,
    dropped: { 'queue-full': 0, 'lost-in-flight': 0, 'unsent-at-exit': 0, 'no-route': 0, 'spool-full': 0, 'spool-error': 0, 'unacked-at-exit': 0, rejected: 0 },
    notices: 0,
    connects: 0,
    disconnects: 0,
    failovers: 0,
    failbacks: 0,
  };
}
