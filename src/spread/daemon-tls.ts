/**
 * The daemon's TLS ports: a plain TCP listener whose admitted connections
 * are taken here. The first bytes decide: a TLS ClientHello goes to a
 * tls.Server (one per daemon, its secure context replaced on SIGHUP), a
 * plaintext client is answered with a TLS alert and closed. Handshakes in
 * progress are capped: past the cap a connection is closed before anything
 * is read or allocated for it. A connection whose handshake completed is
 * handed on with the names its client certificate speaks for (mutual TLS).
 */
import type net from 'node:net';
import tls from 'node:tls';
import { REJECT_AUTH } from './constants.js';
import type { RejectCause } from './daemon-events.js';
import type { Settle } from './daemon-acceptor.js';
import { encodeRejectCode } from './encode.js';
import { TLS_FATAL_ALERT, TLS_HANDSHAKE_RECORD, type TlsServerFiles, type TlsServerMaterial, certificateNames, loadServerMaterial } from './tls.js';

export interface TlsFrontHooks {
  /**
   * The handshake completed; `names`: the client certificate's CN and DNS SANs under mutual TLS,
   * else undefined; `settle`: the acceptor's, given to take(), to call once the Spread handshake is done.
   */
  secure(sock: tls.TLSSocket, names: string[] | undefined, settle: Settle): void;
  /** Refused or failed before or in the TLS handshake (closed already). */
  refused(remote: string, reason: string, cause: RejectCause): void;
}

export class TlsFront {
  private readonly server: tls.Server;
  private inProgress = 0;
  /** Connections in their TLS handshake, by remote address:port (a TLSSocket shows its raw socket's). */
  private readonly pending = new Map<string, () => void>();
  private material: TlsServerMaterial;
  /** Raw sockets handed to the TLS server, with their acceptor's settle. */
  private readonly settles = new WeakMap<net.Socket, Settle>();
  /** Connections not yet handed on (sniffing, in the handshake, or lingering with a refusal): destroyed by closeAll(). */
  private readonly held = new Set<net.Socket>();
  /** Raw sockets handed to the TLS server, with their remote address:port taken while they had one. */
  private readonly remotes = new WeakMap<net.Socket, string>();

  /** Throws SP_ERR_TLS_FILE (naming the file) when a file cannot be read or used. */
  constructor(
    readonly files: TlsServerFiles,
    private readonly maxHandshakes: number,
    private readonly handshakeTimeout: number,
    private readonly hooks: TlsFrontHooks,
  ) {
    this.material = loadServerMaterial(files);
    const mutual = files.clientCa !== undefined;
    // The certificate is checked here rather than by OpenSSL (rejectUnauthorized), which would
    // end a refused client's connection with no word: it gets a REJECT_AUTH byte inside TLS instead,
    // and the refusal is counted by its cause.
    this.server = tls.createServer({ ...this.material, requestCert: mutual, rejectUnauthorized: false });
    this.server.on('secureConnection', (t) => {
      const remote = this.remoteOf(t);
      this.pending.get(remote)?.();
      if (mutual && !t.authorized) {
        const none = Object.keys(t.getPeerCertificate()).length === 0;
        this.hooks.refused(remote, none ? 'no client certificate (--tls-client-ca requires one)' : `client certificate refused: ${String(t.authorizationError)}`, none ? 'tls-no-client-cert' : 'tls-bad-client-cert');
        t.on('error', () => {});
        t.end(encodeRejectCode(REJECT_AUTH));
        setTimeout(() => t.destroy(), 1000).unref();
        return;
      }
      const raw = rawOf(t);
      if (raw) this.held.delete(raw);
      // Without the raw socket (never seen), the raw socket's close still settles it.
      this.hooks.secure(t, mutual ? certificateNames(t.getPeerCertificate()) : undefined, (raw && this.settles.get(raw)) || (() => {}));
    });
    this.server.on('tlsClientError', (err: NodeJS.ErrnoException, t) => {
      const remote = this.remoteOf(t);
      this.pending.get(remote)?.();
      this.hooks.refused(remote, `TLS handshake failed: ${reason(err)}`, 'tls-handshake');
      t.destroy();
    });
  }

  /** The raw socket's remote address: a TLSSocket whose socket is gone no longer has one. */
  private remoteOf(t: tls.TLSSocket): string {
    const raw = rawOf(t);
    return (raw && this.remotes.get(raw)) ?? remoteKey(t);
  }

  /** Whether a client certificate is required (and its names bound the host tags). */
  get mutual(): boolean {
    return this.files.clientCa !== undefined;
  }

  /** Handshakes in progress now. */
  get handshaking(): number {
    return this.inProgress;
  }

  /** Read the files again and use them for new connections; on failure (SP_ERR_TLS_FILE) the old ones stay. */
  reload(): void {
    const m = loadServerMaterial(this.files);
    this.server.setSecureContext(m);
    this.material = m;
  }

  /** The daemon closes: connections still here go (sessions past the handshake are the daemon's). */
  closeAll(): void {
    for (const s of this.held) s.destroy();
    this.held.clear();
  }

  /**
   * An admitted TCP connection on a TLS port. It stays pending for the
   * acceptor's caps (`settle`) through the TLS handshake and the Spread one.
   */
  take(sock: net.Socket, settle: Settle = () => {}): void {
    const remote = remoteKey(sock);
    if (this.inProgress >= this.maxHandshakes) {
      sock.on('error', () => {});
      sock.destroy();
      this.hooks.refused(remote, `${this.inProgress} TLS handshakes in progress already`, 'tls-busy');
      return;
    }
    this.inProgress++;
    this.held.add(sock);
    sock.once('close', () => this.held.delete(sock));
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      this.inProgress--;
      clearTimeout(timer);
      if (this.pending.get(remote) === finish) this.pending.delete(remote);
    };
    this.pending.set(remote, finish);
    const timer = setTimeout(() => {
      finish();
      sock.destroy();
      this.hooks.refused(remote, `TLS handshake not completed within ${this.handshakeTimeout} ms`, 'handshake-timeout');
    }, this.handshakeTimeout);
    const onEarlyClose = (): void => {
      if (finished) return;
      finish();
      this.hooks.refused(remote, 'connection closed before the TLS handshake', 'hung-up');
    };
    sock.on('error', () => {});
    sock.once('close', onEarlyClose);
    sock.once('data', (chunk: Buffer) => {
      sock.pause();
      if (chunk[0] !== TLS_HANDSHAKE_RECORD) {
        finish();
        sock.end(TLS_FATAL_ALERT);
        setTimeout(() => sock.destroy(), 1000).unref();
        this.hooks.refused(remote, 'plaintext on a TLS port: the client must dial tls://HOST:PORT', 'plaintext-on-tls');
        return;
      }
      sock.removeListener('close', onEarlyClose);
      // Whatever ends the handshake, the count goes down when the socket goes.
      sock.once('close', finish);
      this.remotes.set(sock, remote);
      this.settles.set(sock, settle);
      // The TLSSocket takes what is buffered on the raw socket first.
      sock.unshift(chunk);
      this.server.emit('connection', sock);
    });
  }
}

/** The TCP socket under a TLSSocket: tls.Server keeps it as _parent (Node has for years; not in its types). */
function rawOf(t: tls.TLSSocket): net.Socket | undefined {
  return (t as unknown as { _parent?: net.Socket })._parent;
}

function remoteKey(s: net.Socket): string {
  return `${s.remoteAddress}:${s.remotePort}`;
}

function reason(err: Error): string {
  const m = err.message;
  return /:([^:]+):[^:]*\.c:\d+/.exec(m)?.[1] ?? m;
}
