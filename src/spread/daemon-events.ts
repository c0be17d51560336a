/**
 * What the built-in daemon reports: its status events (the CLI prints them,
 * tests assert on them), the stable keys of connections that ended before
 * their handshake completed, and the events a session reports to the
 * daemon. Types only, shared by the daemon's parts.
 */

/** Status events for the operator. */
export type DaemonEvent =
  | { type: 'listening'; address: string }
  | { type: 'connect'; session: string; remote: string; library: string; membership: boolean }
  /** Refused or dropped before the handshake completed; code 0 when no reject byte was sent. */
  | { type: 'reject'; remote: string; code: number; reason: string; cause: RejectCause }
  | { type: 'disconnect'; session: string; reason: string; graceful: boolean }
  | { type: 'slow-session'; session: string; queued: number }
  | { type: 'protocol-error'; session: string; reason: string }
  /** Mutual TLS: a message whose line(s) carry a host tag the client certificate does not name; not delivered. */
  | { type: 'forged-tag'; session: string; tag: string; names: readonly string[] }
  /** SIGHUP: the TLS files read again (`error`: they could not be, the old ones stay). */
  | { type: 'tls-reload'; files: string; error?: string }
  /** Trouble that is not one session's: e.g. accept() failing for lack of descriptors. */
  | { type: 'error'; reason: string };

/**
 * Why a connection ended before its handshake completed, as a stable key
 * (reports count them by it): refused before anything was read (`not-allowed`
 * by --allow, `quota`, `fault`), refused by the handshake (`version`,
 * `illegal-name`, `name-in-use`, `auth`), or dropped in it
 * (`handshake-timeout`, `not-spread`: bytes no Spread client sends,
 * `hung-up`, `socket-error`, `dropped`: the daemon closing); or closed at
 * once, unread, for too many connections in their handshake
 * (`pending-per-address` from its address, `pending-total` from all); and on
 * TLS ports `tls-busy` (over the cap of TLS handshakes in progress),
 * `plaintext-on-tls`, `tls-no-client-cert`, `tls-bad-client-cert`,
 * `tls-handshake`; on plain ports `tls-on-plain` (a TLS client).
 */
export type RejectCause =
  | 'pending-per-address'
  | 'pending-total'
  | 'not-allowed'
  | 'quota'
  | 'fault'
  | 'version'
  | 'illegal-name'
  | 'name-in-use'
  | 'auth'
  | 'handshake-timeout'
  | 'not-spread'
  | 'hung-up'
  | 'socket-error'
  | 'dropped'
  /** TLS ports: handshakes over the cap, plaintext on a TLS port, a handshake that failed (no or a bad client certificate, other). */
  | 'tls-busy'
  | 'plaintext-on-tls'
  | 'tls-no-client-cert'
  | 'tls-bad-client-cert'
  | 'tls-handshake'
  /** A TLS ClientHello on a plain port. */
  | 'tls-on-plain';

/** Why a session ended, reported once with its 'close' event. */
export interface CloseReason {
  /** For the operator: "connection closed by client", "bad request: ...". */
  text: string;
  /** Where it ended: in the handshake (a refused or dropped connection) or after it. */
  phase: 'handshake' | 'open';
  /** The client ended it itself after its handshake (KILL_MESS, or closing its side). */
  graceful: boolean;
  /** The stable key of an end in the handshake; 'dropped' when the daemon ended it. */
  cause: RejectCause;
  /** The handshake was refused with this reject code, and the byte sent. */
  rejectCode?: number;
  /** The client broke PROTOCOL.md 9: how (`text` is "bad request: " and this). */
  protocolError?: string;
}

/** How to end a session: the text, and what is not the default (not graceful, cause 'dropped'). */
export type CloseRequest = string | { text: string; graceful?: boolean; cause?: RejectCause; protocolError?: string };

export type SessionEvent =
  /** The handshake completed. */
  | { type: 'open' }
  /** The session queued more than its budget; it is already muted, and is to be closed. */
  | { type: 'overflow'; queued: number }
  /** Mutual TLS: a data message with a host tag its certificate does not name, refused (not delivered). */
  | { type: 'forged'; tag: string }
  | { type: 'close'; reason: CloseReason };
