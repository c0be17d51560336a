/**
 * One error base class with a stable `code`, in the manner of undici's
 * lib/core/errors.js: callers and tests switch on `code`, never on message text.
 */

export const ErrorCodes = {
  /** A daemon name that is not `PORT`, `PORT@HOST` or `HOST:PORT`. */
  ILLEGAL_SPREAD: 'SP_ERR_ILLEGAL_SPREAD',
  /** TCP / unix connect failed (refused, unreachable, DNS). */
  COULD_NOT_CONNECT: 'SP_ERR_COULD_NOT_CONNECT',
  /** Connect or handshake took longer than the connect timeout. */
  CONNECT_TIMEOUT: 'SP_ERR_CONNECT_TIMEOUT',
  /** The caller gave up on a connect (its AbortSignal fired). */
  ABORTED: 'SP_ERR_ABORTED',
  REJECT_QUOTA: 'SP_ERR_REJECT_QUOTA',
  REJECT_NO_NAME: 'SP_ERR_REJECT_NO_NAME',
  REJECT_ILLEGAL_NAME: 'SP_ERR_REJECT_ILLEGAL_NAME',
  REJECT_NOT_UNIQUE: 'SP_ERR_REJECT_NOT_UNIQUE',
  REJECT_VERSION: 'SP_ERR_REJECT_VERSION',
  REJECT_AUTH: 'SP_ERR_REJECT_AUTH',
  /** The daemon closed or reset the connection. */
  CONNECTION_CLOSED: 'SP_ERR_CONNECTION_CLOSED',
  /** A service type without exactly one delivery bit. */
  ILLEGAL_SERVICE: 'SP_ERR_ILLEGAL_SERVICE',
  /** A group name that is empty, too long or has illegal characters. */
  ILLEGAL_GROUP: 'SP_ERR_ILLEGAL_GROUP',
  /** A private name that is too long or has illegal characters. */
  ILLEGAL_NAME: 'SP_ERR_ILLEGAL_NAME',
  /** data + 32 * groups over the limit; nothing was sent. */
  MESSAGE_TOO_LONG: 'SP_ERR_MESSAGE_TOO_LONG',
  /** A message to more than 100 groups (real daemons drop the session); nothing was sent. */
  TOO_MANY_GROUPS: 'SP_ERR_TOO_MANY_GROUPS',
  /** Bytes from the peer that break the protocol (bad lengths, bad handshake). */
  PROTOCOL: 'SP_ERR_PROTOCOL',
  /** The session is not connected (closed, or not yet open). */
  NOT_CONNECTED: 'SP_ERR_NOT_CONNECTED',
  /** An invalid option or argument given by the user. */
  INVALID_ARGUMENT: 'SP_ERR_INVALID_ARGUMENT',
  /** A daemon stopped reading: writes stayed blocked past the stall timeout. */
  STALLED: 'SP_ERR_STALLED',
  /** The spool directory is in use by another live spread-pipe. */
  SPOOL_LOCKED: 'SP_ERR_SPOOL_LOCKED',
  /** The spool directory cannot be used (not writable, not a spool, I/O error). */
  SPOOL: 'SP_ERR_SPOOL',
  /** The daemon or the syslog bridge cannot listen: address in use, a unix path a live process serves or that is not a socket. */
  LISTEN: 'SP_ERR_LISTEN',
  /** A --write file or --write-split directory that cannot be written. */
  WRITE: 'SP_ERR_WRITE',
  /** --user: the drop to that user and group failed or did not take, or cannot be done without root. */
  PRIVILEGES: 'SP_ERR_PRIVILEGES',
  /** A TLS certificate, key or CA file that cannot be read or does not parse (or a key that does not match its certificate). */
  TLS_FILE: 'SP_ERR_TLS_FILE',
  /** The daemon's certificate is not signed by a trusted CA (--tls-ca or the system's). */
  TLS_UNTRUSTED: 'SP_ERR_TLS_UNTRUSTED',
  /** The daemon's certificate has expired or is not valid yet. */
  TLS_EXPIRED: 'SP_ERR_TLS_EXPIRED',
  /** The daemon's certificate does not name the host dialed (nor --tls-servername). */
  TLS_NAME_MISMATCH: 'SP_ERR_TLS_NAME_MISMATCH',
  /** The TLS handshake failed otherwise: refused by the daemon (e.g. no or a wrong client certificate), or the peer hung up in it (a plain port?). */
  TLS_HANDSHAKE: 'SP_ERR_TLS_HANDSHAKE',
  /** A plaintext dial reached a TLS port: the daemon answered in TLS. */
  TLS_EXPECTED: 'SP_ERR_TLS_EXPECTED',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export class SpreadPipeError extends Error {
  readonly code: ErrorCode;
  /** The Spread result code (negative) where there is one, e.g. -6 for REJECT_NOT_UNIQUE. */
  readonly spreadCode: number | undefined;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; spreadCode?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SpreadPipeError';
    this.code = code;
    this.spreadCode = options?.spreadCode;
  }
}

export function isSpreadPipeError(e: unknown, code?: ErrorCode): e is SpreadPipeError {
  return e instanceof SpreadPipeError && (code === undefined || e.code === code);
}

/** Message of any thrown value, for one-line reports. */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
