/**
 * TLS between spread-pipe ends (the Spread client protocol unchanged
 * inside): the client's settings (what to trust, what to present), the
 * daemon's certificate files read into secure-context options (again on
 * SIGHUP), the host names a client certificate speaks for, and Node's TLS
 * failures turned into SpreadPipeErrors with stable codes and one-line
 * messages that name the peer. No sockets here.
 */
import fs from 'node:fs';
import { isIP } from 'node:net';
import tls from 'node:tls';
import { ErrorCodes, SpreadPipeError, errorMessage } from '../errors.js';
import { OptionError } from '../options.js';

/** Nothing older: TLS 1.0/1.1 are broken. @default 'TLSv1.2' */
export const DEFAULT_TLS_MIN_VERSION = 'TLSv1.2';
/** TLS handshakes in progress at once on the daemon's TLS ports; more are closed unread. @default 64 */
export const DEFAULT_MAX_TLS_HANDSHAKES = 64;

/** The first byte of a TLS record that carries a handshake (a ClientHello opens every TLS connection). */
export const TLS_HANDSHAKE_RECORD = 0x16;
/** A TLS record carrying an alert. */
const TLS_ALERT_RECORD = 0x15;
/**
 * A fatal unexpected_message alert (TLS 1.2 record layer): what the daemon
 * answers a plaintext client on a TLS port, so that our client (and anyone
 * looking at the bytes) can tell it reached a TLS port.
 */
export const TLS_FATAL_ALERT = Buffer.from([TLS_ALERT_RECORD, 0x03, 0x03, 0x00, 0x02, 0x02, 0x0a]);

/** Bytes a plaintext dial got back that are a TLS server talking (an alert or a handshake record of TLS 1.x). */
export function looksLikeTls(b: Buffer): boolean {
  return b.length >= 2 && (b[0] === TLS_ALERT_RECORD || b[0] === TLS_HANDSHAKE_RECORD) && b[1] === 0x03;
}

/** A client's TLS options, as files (the CLI's --tls-*). */
export interface TlsClientOptions {
  /** PEM CA bundle that signs the daemon's certificate. @default the system's CAs */
  ca?: string | undefined;
  /** PEM client certificate, for a daemon with --tls-client-ca; needs `key`. */
  cert?: string | undefined;
  key?: string | undefined;
  /** Name the daemon's certificate must carry. @default the host dialed */
  servername?: string | undefined;
}

/** Read and checked: what a dial hands to tls.connect. */
export interface TlsClientConfig {
  ca?: Buffer | undefined;
  cert?: Buffer | undefined;
  key?: Buffer | undefined;
  servername?: string | undefined;
  /** The files it was read from: read again by a dial when they changed (see currentTlsClientConfig). */
  files?: TlsClientOptions | undefined;
  /** The files' sizes and times when read. */
  stamp?: string | undefined;
}

/** The daemon's TLS files (--tls-cert, --tls-key, --tls-client-ca). */
export interface TlsServerFiles {
  cert: string;
  key: string;
  /** Mutual TLS: only clients with a certificate this CA signed get in. */
  clientCa?: string | undefined;
}

/** The files' contents, checked to make a secure context: what tls.Server.setSecureContext takes. */
export interface TlsServerMaterial {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer | undefined;
  minVersion: tls.SecureVersion;
}

function tlsFileError(what: string, file: string, why: string, cause?: unknown): SpreadPipeError {
  return new SpreadPipeError(ErrorCodes.TLS_FILE, `TLS ${what} ${file}: ${why}`, { cause });
}

/** A PEM file's bytes; a missing, unreadable or non-PEM file is SP_ERR_TLS_FILE naming it. */
export function readPem(what: string, file: string): Buffer {
  let b: Buffer;
  try {
    b = fs.readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw tlsFileError(what, file, code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : errorMessage(e), e);
  }
  if (!b.includes('-----BEGIN ')) throw tlsFileError(what, file, 'not a PEM file (no -----BEGIN line)');
  return b;
}

/** OpenSSL's reason for a bad PEM or a key that does not fit, without its error-stack prefix. */
function opensslReason(e: unknown): string {
  const m = errorMessage(e);
  return /:([^:]+):[^:]*\.c:\d+/.exec(m)?.[1] ?? m;
}

/** Files read and a secure context made of them once, so that a bad PEM or a key that fits no certificate fails here. */
export function resolveTlsClientOptions(o: TlsClientOptions): TlsClientConfig {
  if ((o.cert === undefined) !== (o.key === undefined)) throw new OptionError(o.cert === undefined ? 'tlsKey' : 'tlsCert', `a client certificate needs both --tls-cert and --tls-key`);
  if (o.servername !== undefined && !/^[A-Za-z0-9.-]+$/.test(o.servername)) throw new OptionError('tlsServername', `expected a DNS name, got ${JSON.stringify(o.servername)}`);
  const cfg: TlsClientConfig = {
    ca: o.ca === undefined ? undefined : readPem('CA file', o.ca),
    cert: o.cert === undefined ? undefined : readPem('certificate', o.cert),
    key: o.key === undefined ? undefined : readPem('key', o.key),
    servername: o.servername,
    files: o,
    stamp: fileStamp(o),
  };
  try {
    tls.createSecureContext({ ca: cfg.ca, cert: cfg.cert, key: cfg.key, minVersion: DEFAULT_TLS_MIN_VERSION });
  } catch (e) {
    const file = /key/i.test(errorMessage(e)) ? o.key : (o.cert ?? o.ca);
    throw tlsFileError(/key/i.test(errorMessage(e)) ? 'key' : o.cert ? 'certificate' : 'CA file', file ?? '', opensslReason(e), e);
  }
  return cfg;
}

function fileStamp(o: TlsClientOptions): string {
  return [o.ca, o.cert, o.key]
    .map((f) => {
      if (f === undefined) return '-';
      try {
        const st = fs.statSync(f);
        return `${st.size}:${st.mtimeMs}:${st.ctimeMs}:${st.ino}`;
      } catch {
        return 'gone';
      }
    })
    .join('|');
}

/**
 * The config to dial with now: its files read again when they changed since
 * (a renewed client certificate or CA is taken at the next connect, without
 * a restart; the certificate only matters in the handshake). Updated in
 * place. Files that changed into something unusable throw SP_ERR_TLS_FILE:
 * the dial fails with that line rather than going on silently with the old.
 */
export function currentTlsClientConfig(cfg: TlsClientConfig): TlsClientConfig {
  if (!cfg.files || fileStamp(cfg.files) === cfg.stamp) return cfg;
  try {
    return Object.assign(cfg, resolveTlsClientOptions(cfg.files));
  } catch (e) {
    // After --user the files may be root's alone: what was read before the drop goes on
    // (a renewal then needs a restart, as README says).
    if ((e as { cause?: NodeJS.ErrnoException }).cause?.code === 'EACCES') return cfg;
    throw e;
  }
}

/** tls.connect's options for a daemon at host:port. */
export function tlsConnectOptions(host: string, port: number, cfg: TlsClientConfig = {}): tls.ConnectionOptions {
  return {
    host,
    port,
    // SNI carries names only; an IP address is checked against the certificate's IP SANs.
    servername: cfg.servername ?? (isIP(host) ? undefined : host),
    ca: cfg.ca,
    cert: cfg.cert,
    key: cfg.key,
    minVersion: DEFAULT_TLS_MIN_VERSION,
    rejectUnauthorized: true,
    ...(cfg.servername ? { checkServerIdentity: (_h: string, cert: tls.PeerCertificate) => tls.checkServerIdentity(cfg.servername!, cert) } : {}),
  };
}

/** The daemon's files read, checked (a key that does not fit its certificate fails here); SP_ERR_TLS_FILE names the file. */
export function loadServerMaterial(f: TlsServerFiles): TlsServerMaterial {
  const m: TlsServerMaterial = {
    cert: readPem('certificate', f.cert),
    key: readPem('key', f.key),
    ca: f.clientCa === undefined ? undefined : readPem('client CA file', f.clientCa),
    minVersion: DEFAULT_TLS_MIN_VERSION,
  };
  try {
    tls.createSecureContext({ cert: m.cert, ca: m.ca, minVersion: m.minVersion });
  } catch (e) {
    throw tlsFileError(m.ca && !/cert/i.test(opensslReason(e)) ? 'client CA file' : 'certificate', m.ca ? (f.clientCa ?? f.cert) : f.cert, opensslReason(e), e);
  }
  try {
    tls.createSecureContext(m);
  } catch (e) {
    throw tlsFileError('key', f.key, /mismatch/i.test(errorMessage(e)) ? `does not match the certificate ${f.cert}` : opensslReason(e), e);
  }
  return m;
}

/** The names a client certificate speaks for: its subject's CN and its DNS SANs, lower case. */
export function certificateNames(cert: tls.PeerCertificate | undefined): string[] {
  if (!cert || !cert.subject) return [];
  const out = new Set<string>();
  const cn = cert.subject.CN as string | string[] | undefined;
  for (const c of Array.isArray(cn) ? cn : cn ? [cn] : []) out.add(c.toLowerCase());
  for (const part of (cert.subjectaltname ?? '').split(', ')) if (part.startsWith('DNS:')) out.add(part.slice(4).toLowerCase());
  return [...out];
}

const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
]);

/**
 * A failed TLS dial as one line: the daemon's certificate untrusted,
 * expired or for another name; the daemon refusing us (no or a wrong
 * client certificate); or a peer that does not speak TLS at all.
 */
export function tlsDialError(err: NodeJS.ErrnoException & { reason?: string }, label: string): SpreadPipeError {
  const code = err.code ?? '';
  const opts = { cause: err };
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
    return new SpreadPipeError(ErrorCodes.TLS_EXPIRED, `the certificate of daemon ${label} ${code === 'CERT_HAS_EXPIRED' ? 'has expired' : 'is not valid yet'}`, opts);
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return new SpreadPipeError(ErrorCodes.TLS_NAME_MISMATCH, `the certificate of daemon ${label} is for another name: ${err.reason ?? err.message}`, opts);
  if (UNTRUSTED.has(code)) return new SpreadPipeError(ErrorCodes.TLS_UNTRUSTED, `the certificate of daemon ${label} is not trusted (${code}): not signed by --tls-ca or a system CA`, opts);
  if (/CERTIFICATE_REQUIRED|HANDSHAKE_FAILURE/.test(code)) return new SpreadPipeError(ErrorCodes.TLS_HANDSHAKE, `daemon ${label} requires a client certificate signed by its CA (--tls-cert/--tls-key): ${alertText(err)}`, opts);
  if (/ALERT_(BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_UNKNOWN|CERTIFICATE_EXPIRED|UNSUPPORTED_CERTIFICATE|DECRYPT_ERROR)/.test(code)) {
    return new SpreadPipeError(ErrorCodes.TLS_HANDSHAKE, `daemon ${label} refused our client certificate: ${alertText(err)}`, opts);
  }
  if (/WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG|RECORD_LAYER|UNKNOWN_PROTOCOL|HTTP_REQUEST/.test(code)) {
    return new SpreadPipeError(ErrorCodes.TLS_HANDSHAKE, `daemon ${label} does not speak TLS (a plain Spread port? name it PORT@HOST): ${alertText(err)}`, opts);
  }
  if (code === 'ECONNRESET' || code === 'EPIPE' || /before secure TLS connection/.test(err.message)) {
    return new SpreadPipeError(ErrorCodes.TLS_HANDSHAKE, `daemon ${label} closed the connection in the TLS handshake (a plain Spread port? name it PORT@HOST)`, opts);
  }
  return new SpreadPipeError(ErrorCodes.TLS_HANDSHAKE, `TLS handshake with daemon ${label} failed: ${alertText(err)}`, opts);
}

/** Is this error from the TLS layer (OpenSSL or certificate verification), not the TCP connect? */
export function isTlsError(err: NodeJS.ErrnoException): boolean {
  const code = err.code ?? '';
  return code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || code.startsWith('CERT_') || UNTRUSTED.has(code) || /before secure TLS connection/.test(err.message);
}

function alertText(err: Error): string {
  return opensslReason(err);
}
