/**
 * The client's transport: dialing a daemon over TCP or a unix socket, the
 * client half of the handshake (PROTOCOL.md 3: connect request, NULL
 * authentication, accept or reject byte), and a watchdog for a socket that
 * stops draining. SpreadClient owns the session once the handshake is done.
 */
import net from 'node:net';
import tls from 'node:tls';
import { CONNECTION_CLOSED, COULD_NOT_CONNECT, LIBRARY_VERSION, MAX_PRIVATE_NAME, REJECT_AUTH, REJECT_ILLEGAL_NAME, REJECT_NO_NAME, REJECT_NOT_UNIQUE, REJECT_QUOTA, REJECT_VERSION, rejectCodeName } from './constants.js';
import { encodeAuthChoice, encodeConnectRequest } from './encode.js';
import { parseAccept, parseAuthList } from './handshake.js';
import type { DaemonAddress } from './address.js';
import { currentTlsClientConfig, isTlsError, looksLikeTls, tlsConnectOptions, tlsDialError } from './tls.js';
import { type ErrorCode, ErrorCodes, SpreadPipeError } from '../errors.js';

/** What a dial needs, already resolved from the client's options. */
export interface DialOptions {
  /** Milliseconds for connect plus handshake. */
  connectTimeout: number;
  /** Ask for membership notices. */
  membership: boolean;
  signal?: AbortSignal | undefined;
  /** Bytes of one reused read buffer (SpreadClientOptions.readBuffer); 0: a fresh buffer per read. */
  readBuffer?: number;
}

/** A socket past the handshake. */
export interface Handshaken {
  socket: net.Socket;
  privateGroup: string;
  daemonVersion: [number, number, number];
  /** Bytes that came behind the accept in the same read (framed messages). */
  rest: Buffer;
  /** With a reused read buffer: where reads go; the session sets `sink` (the handshake copies what it keeps). */
  reads?: { sink: (chunk: Buffer) => void } | undefined;
}

/** The private name tried at `attempt`: the pid first, then with a random suffix (after REJECT_NOT_UNIQUE). */
export function generatedName(attempt: number): string {
  const base = `sp${process.pid}`;
  if (attempt === 0) return base.slice(0, MAX_PRIVATE_NAME);
  const suffix = Math.floor(Math.random() * 36 ** 3).toString(36);
  return `${base.slice(0, MAX_PRIVATE_NAME - suffix.length - 1)}-${suffix}`;
}

const REJECT_CODES: Record<number, ErrorCode> = {
  [REJECT_QUOTA]: ErrorCodes.REJECT_QUOTA,
  [REJECT_NO_NAME]: ErrorCodes.REJECT_NO_NAME,
  [REJECT_ILLEGAL_NAME]: ErrorCodes.REJECT_ILLEGAL_NAME,
  [REJECT_NOT_UNIQUE]: ErrorCodes.REJECT_NOT_UNIQUE,
  [REJECT_VERSION]: ErrorCodes.REJECT_VERSION,
  [REJECT_AUTH]: ErrorCodes.REJECT_AUTH,
};

function rejectError(code: number, daemon: string): SpreadPipeError {
  return new SpreadPipeError(REJECT_CODES[code] ?? ErrorCodes.CONNECTION_CLOSED, `daemon ${daemon} refused the session: ${rejectCodeName(code)}`, {
    spreadCode: code,
  });
}

/**
 * One connect and handshake as `name`. `open` makes the session from the
 * handshaken socket synchronously, inside the read that completed the
 * handshake, so its listeners are on the socket before anything else can
 * arrive; if it throws, the socket is destroyed and the dial rejects.
 */
export function dial<T>(address: DaemonAddress, name: string, opts: DialOptions, open: (h: Handshaken) => T): Promise<T> {
  return new Promise((resolve, reject) => {
    // With readBuffer every read lands in one buffer (Node's onread): the handshake copies what it keeps, the session decodes in place.
    // (Not over TLS: the reused buffer would hold ciphertext; TLS reads are decrypted into fresh buffers.)
    const reads = opts.readBuffer && address.kind !== 'tls' ? { sink: (chunk: Buffer): void => onData(Buffer.from(chunk)) } : undefined;
    const onread = reads && { buffer: Buffer.allocUnsafeSlow(opts.readBuffer!), callback: (n: number, buf: Uint8Array): boolean => (reads.sink(Buffer.from(buf.buffer, buf.byteOffset, n)), true) };
    const socket: net.Socket =
      address.kind === 'unix'
        ? net.connect({ path: address.path, onread })
        : address.kind === 'tls'
          ? tls.connect(tlsConnectOptions(address.host, address.port, address.tls && currentTlsClientConfig(address.tls)))
          : net.connect({ host: address.host, port: address.port, onread });
    let acc: Buffer = Buffer.alloc(0);
    let phase: 'connect' | 'tls' | 'auth' | 'accept' = 'connect';
    const onAbort = (): void => done(new SpreadPipeError(ErrorCodes.ABORTED, `connect to daemon ${address.label} given up`));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const done = (err: SpreadPipeError | null, session?: T): void => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      socket.removeListener('data', onData);
      socket.removeListener('error', onError);
      socket.removeListener('close', onClose);
      if (err) {
        socket.destroy();
        reject(err);
      } else resolve(session!);
    };
    const timer = setTimeout(
      () => done(new SpreadPipeError(ErrorCodes.CONNECT_TIMEOUT, `no answer from daemon ${address.label} within ${opts.connectTimeout} ms (${phase})`)),
      opts.connectTimeout,
    );
    const onError = (err: NodeJS.ErrnoException): void => {
      // A reject byte may be followed by a reset: parse what we have first.
      if (phase !== 'connect' && acc.length && tryParse()) return;
      if (phase !== 'connect' && looksLikeTls(acc)) return done(tlsExpected(address.label));
      // Over TLS 1.3 a refused client certificate is known only after the handshake: in the Spread handshake.
      if (address.kind === 'tls' && (phase === 'tls' || isTlsError(err))) return done(tlsDialError(err, address.label));
      const code = phase === 'connect' ? ErrorCodes.COULD_NOT_CONNECT : ErrorCodes.CONNECTION_CLOSED;
      done(new SpreadPipeError(code, `cannot connect to daemon ${address.label}: ${err.code ?? err.message}${silentHint()}`, { cause: err, spreadCode: phase === 'connect' ? COULD_NOT_CONNECT : CONNECTION_CLOSED }));
    };
    const onClose = (): void => {
      if (acc.length && tryParse()) return;
      if (looksLikeTls(acc)) return done(tlsExpected(address.label));
      if (phase === 'tls') return done(tlsDialError(Object.assign(new Error('closed before secure TLS connection was established'), { code: 'ECONNRESET' }), address.label));
      done(new SpreadPipeError(ErrorCodes.CONNECTION_CLOSED, `daemon ${address.label} closed the connection during the handshake${silentHint()}`, { spreadCode: CONNECTION_CLOSED }));
    };
    // A Spread daemon answers a connect request (an auth list, or a reject byte); a TLS server that
    // got plaintext (stunnel, nginx stream) hangs up without a word.
    const silentHint = (): string => (address.kind === 'tcp' && phase === 'auth' && acc.length === 0 ? ' without answering (a TLS port? then name it tls://HOST:PORT)' : '');
    const tryParse = (): boolean => {
      try {
        // A TLS server's alert, not an auth list (whose length byte it would pass for).
        if (looksLikeTls(acc)) return done(tlsExpected(address.label)), true;
        if (phase === 'auth') {
          const r = parseAuthList(acc);
          if (!r) return false;
          if (r.kind === 'reject') return done(address.kind === 'tls' && r.code === REJECT_AUTH ? tlsRefused(address) : rejectError(r.code, address.label)), true;
          if (!r.methods.includes('NULL')) return done(rejectError(REJECT_AUTH, address.label)), true;
          acc = acc.subarray(r.consumed);
          phase = 'accept';
          socket.write(encodeAuthChoice(['NULL']));
        }
        const r = parseAccept(acc);
        if (!r) return false;
        if (r.kind === 'reject') return done(rejectError(r.code, address.label)), true;
        if (r.daemonVersion[0] < 3) return done(rejectError(REJECT_VERSION, address.label)), true;
        const session = open({ socket, privateGroup: r.privateGroup, daemonVersion: r.daemonVersion, rest: Buffer.from(acc.subarray(r.consumed)), reads });
        done(null, session);
        return true;
      } catch (e) {
        done(e as SpreadPipeError);
        return true;
      }
    };
    const onData = (chunk: Buffer): void => {
      acc = acc.length ? Buffer.concat([acc, chunk]) : chunk;
      tryParse();
    };
    socket.on('error', onError);
    socket.on('close', onClose);
    if (!reads) socket.on('data', onData);
    const start = (): void => {
      phase = 'auth';
      // One write: real daemons read the request with a single read (PROTOCOL.md 3.6).
      socket.write(encodeConnectRequest({ version: LIBRARY_VERSION, membership: opts.membership, name }));
    };
    socket.once('connect', () => {
      if (address.kind !== 'unix') {
        socket.setNoDelay(true);
        socket.setKeepAlive(true, 10_000);
      }
      if (address.kind === 'tls') phase = 'tls';
      else start();
    });
    if (address.kind === 'tls') socket.once('secureConnect', start);
  });
}

/** Our daemon answers a TLS client whose certificate it does not take with REJECT_AUTH, inside TLS. */
function tlsRefused(address: DaemonAddress & { kind: 'tls' }): SpreadPipeError {
  const text = address.tls?.cert
    ? `daemon ${address.label} refused our client certificate (--tls-cert): not signed by its --tls-client-ca, or expired`
    : `daemon ${address.label} requires a client certificate signed by its CA: give --tls-cert and --tls-key`;
  return new SpreadPipeError(ErrorCodes.TLS_HANDSHAKE, text, { spreadCode: REJECT_AUTH });
}

function tlsExpected(label: string): SpreadPipeError {
  return new SpreadPipeError(ErrorCodes.TLS_EXPECTED, `daemon ${label} answered in TLS: it is a TLS port, name it tls://HOST:PORT`, { spreadCode: CONNECTION_CLOSED });
}

/**
 * Calls `stalled(pending)` when the socket holds unsent bytes and has written
 * nothing for `ms`. Returns the (unref'd) timer, for clearInterval.
 */
export function watchStall(socket: net.Socket, ms: number, stalled: (pending: number) => void): NodeJS.Timeout {
  let lastWritten = -1;
  let since = Date.now();
  const timer = setInterval(() => {
    const pending = socket.writableLength;
    const written = socket.bytesWritten;
    if (pending === 0 || written !== lastWritten) {
      lastWritten = written;
      since = Date.now();
    } else if (Date.now() - since >= ms) {
      stalled(pending);
    }
  }, Math.max(50, Math.floor(ms / 4)));
  timer.unref();
  return timer;
}
