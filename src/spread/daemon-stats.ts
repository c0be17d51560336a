/**
 * The daemon's counters: plain fields, bumped in place on the hot path by
 * the router (messages, bytes, deliveries) and by the daemon (refusals,
 * cut-offs, protocol errors); read whole by getStats() (SIGUSR1, --metrics).
 */

export interface DaemonCounters {
  messagesIn: number;
  deliveries: number;
  bytesIn: number;
  /** Connections refused or dropped before their handshake completed (the two below among them). */
  rejected: number;
  /** Closed unread: too many connections from their address in their handshake. */
  pendingRefusedPerAddress: number;
  /** Closed unread: too many connections from all addresses in their handshake. */
  pendingRefusedTotal: number;
  /** Sessions cut off for queueing more than the session buffer. */
  slowKilled: number;
  protocolErrors: number;
  /** Mutual TLS: messages refused for a host tag the client certificate does not name. */
  forgedTags: number;
}

export interface DaemonStats extends DaemonCounters {
  /** Sessions past the handshake. */
  sessions: number;
  /** Connections, in the handshake or past it. */
  connections: number;
  /** TCP connections in their handshake (counted against the pending caps). */
  pending: number;
  groups: Array<[string, number]>;
  /** TLS handshakes in progress. */
  tlsHandshaking: number;
}

export function newCounters(): DaemonCounters {
  return { messagesIn: 0, deliveries: 0, bytesIn: 0, rejected: 0, pendingRefusedPerAddress: 0, pendingRefusedTotal: 0, slowKilled: 0, protocolErrors: 0, forgedTags: 0 };
}
