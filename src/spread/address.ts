/**
 * Every address form on the command line, parsed in one place: daemon names
 * as Spread spells them plus the host:port form users expect (-s), the
 * daemon's listen addresses (--listen), and syslog sockets (--syslog); and
 * name validation shared by client and daemon. Errors say what is wrong
 * with the text; the CLI puts the option's name in front.
 */
import { isIP } from 'node:net';
import { DEFAULT_SPREAD_PORT, ILLEGAL_GROUP, ILLEGAL_SPREAD, MAX_GROUP_NAME, MAX_PRIVATE_NAME, UNIX_SOCKET_DIR, isNameByte } from './constants.js';
import { ErrorCodes, SpreadPipeError } from '../errors.js';
import type { TlsClientConfig } from './tls.js';

/** Where the built-in daemon listens: TCP on HOST (all interfaces when absent) and PORT (`tls`: TLS on it), or a unix socket. */
export type ListenSpec = { host?: string; port: number; tls?: boolean } | { path: string };

/** Where syslog datagrams are taken: UDP HOST:PORT, or a unix datagram socket. */
export type SyslogSpec = { kind: 'udp'; host: string; port: number; label: string } | { kind: 'unix'; path: string; label: string };

/** Longest unix socket path Linux takes (sun_path is 108 bytes with the NUL). */
const MAX_UNIX_PATH = 107;

export type DaemonAddress =
  | { kind: 'unix'; path: string; label: string }
  | { kind: 'tcp'; host: string; port: number; label: string }
  /** `tls://HOST:PORT`; `tls` is what to verify and present (the CLI fills it from --tls-*; absent: the system CAs, no client certificate). */
  | { kind: 'tls'; host: string; port: number; label: string; tls?: TlsClientConfig };

function port(text: string, spec: string): number {
  if (!/^\d{1,5}$/.test(text)) throw illegal(spec, `port "${text}" is not a number`);
  const p = Number(text);
  if (p < 1 || p > 65535) throw illegal(spec, `port ${p} is outside 1..65535`);
  return p;
}

function illegal(spec: string, why: string): SpreadPipeError {
  return new SpreadPipeError(ErrorCodes.ILLEGAL_SPREAD, `bad daemon name "${spec}": ${why}`, { spreadCode: ILLEGAL_SPREAD });
}

function host(text: string, spec: string): string {
  const h = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  if (h.length === 0) throw illegal(spec, 'empty host');
  if (h.includes(':') && isIP(h) !== 6) throw illegal(spec, `"${h}" is not an IPv6 address`);
  if (!h.includes(':') && !/^[A-Za-z0-9._-]+$/.test(h)) throw illegal(spec, `"${h}" is not a host name`);
  return h;
}

/**
 * Parse a daemon name:
 *  - `4803` or empty: the unix socket /tmp/4803 (Spread's own default)
 *  - `4803@host`: TCP (host may be an IPv6 address, bracketed or not)
 *  - `host:4803`, `[::1]:4803`: TCP
 *  - a path starting with `/`: that unix socket
 *  - `tls://host:4803`, `tls://[::1]:4803`: TLS over TCP (the Spread protocol inside)
 */
export function parseDaemonAddress(spec: string): DaemonAddress {
  const s = spec.trim();
  if (s === '') return parseDaemonAddress(String(DEFAULT_SPREAD_PORT));
  if (/^tls:/i.test(s)) {
    const m = /^tls:\/\/(?:\[([^\]]+)\]|([^:/@\[\]]+)):([^:/]+)$/i.exec(s);
    if (!m) throw illegal(spec, 'expected tls://HOST:PORT');
    const h = host(m[1] ?? m[2]!, spec);
    const p = port(m[3]!, spec);
    return { kind: 'tls', host: h, port: p, label: `tls://${h.includes(':') ? `[${h}]` : h}:${p}` };
  }
  if (s.startsWith('/')) return { kind: 'unix', path: s, label: s };
  if (/^\d+$/.test(s)) {
    const p = port(s, spec);
    return { kind: 'unix', path: `${UNIX_SOCKET_DIR}/${p}`, label: String(p) };
  }
  const at = s.indexOf('@');
  if (at >= 0) {
    const p = port(s.slice(0, at), spec);
    const h = host(s.slice(at + 1), spec);
    return { kind: 'tcp', host: h, port: p, label: `${p}@${h}` };
  }
  const bracket = /^\[([^\]]+)\]:(\d+)$/.exec(s);
  if (bracket) {
    const h = host(bracket[1]!, spec);
    return { kind: 'tcp', host: h, port: port(bracket[2]!, spec), label: `${port(bracket[2]!, spec)}@${h}` };
  }
  const colon = s.lastIndexOf(':');
  if (colon > 0 && s.indexOf(':') === colon) {
    const h = host(s.slice(0, colon), spec);
    const p = port(s.slice(colon + 1), spec);
    return { kind: 'tcp', host: h, port: p, label: `${p}@${h}` };
  }
  throw illegal(spec, 'expected PORT, PORT@HOST or HOST:PORT');
}

function describeChar(c: number): string {
  if (c === 0x20) return 'a space';
  if (c < 0x20 || c === 0x7f) return `control character 0x${c.toString(16).padStart(2, '0')}`;
  if (c > 0x7e) return `the non-ASCII byte 0x${c.toString(16)}`;
  return `the character '${String.fromCharCode(c)}'`;
}

function checkName(name: string, max: number): string | undefined {
  if (name.length === 0) return 'empty';
  const b = Buffer.from(name, 'latin1');
  if (Buffer.byteLength(name, 'utf8') !== name.length) return `"${[...name].find((ch) => ch.charCodeAt(0) > 0x7e)}" is not allowed: names are ASCII`;
  if (b.length > max) return `${b.length} characters, at most ${max} are allowed`;
  for (const c of b) if (!isNameByte(c)) return `${describeChar(c)} is not allowed: names are letters, digits and punctuation from the ASCII range, without spaces, control characters, '!', '"' or '#'`;
  return undefined;
}

/** Group names for join/leave/send: 1..31 characters, each '$'..'~'. */
export function validateGroupName(name: string): string {
  const why = checkName(name, MAX_GROUP_NAME - 1);
  if (why) throw new SpreadPipeError(ErrorCodes.ILLEGAL_GROUP, `bad group name "${name}": ${why}`, { spreadCode: ILLEGAL_GROUP });
  return name;
}

/** A private group name `#name#daemon` may be a destination too; `#` is then legal. */
export function validateDestination(name: string): string {
  if (/^#[^#]+#[^#]+$/.test(name) && name.length <= MAX_GROUP_NAME - 1) {
    const [, priv, proc] = name.split('#');
    if (!checkName(priv!, MAX_PRIVATE_NAME) && !checkName(proc!, 19)) return name;
  }
  return validateGroupName(name);
}

/** Private names: 1..10 characters, each '$'..'~' except '#'. */
export function validatePrivateName(name: string): string {
  const why = checkName(name, MAX_PRIVATE_NAME) ?? (name.includes('#') ? "'#' not allowed" : undefined);
  if (why) throw new SpreadPipeError(ErrorCodes.ILLEGAL_NAME, `bad private name "${name}": ${why}`);
  return name;
}

/** `--listen`: `PORT`, `HOST:PORT`, `[V6]:PORT` (TCP; port 0 picks one), `tls://HOST:PORT` (TLS), or `/unix/path`. */
export function parseListenAddress(text: string): ListenSpec {
  const bad = (why: string): SpreadPipeError => new SpreadPipeError(ErrorCodes.INVALID_ARGUMENT, `bad listen address "${text}": ${why}`);
  if (/^tls:/i.test(text)) {
    const m = /^tls:\/\/(.+)$/i.exec(text);
    if (!m || m[1]!.startsWith('/')) throw bad('expected tls://HOST:PORT or tls://PORT');
    const inner = parseListenAddress(m[1]!);
    return { ...(inner as { host?: string; port: number }), tls: true };
  }
  if (text.startsWith('/')) {
    if (Buffer.byteLength(text) > MAX_UNIX_PATH) throw bad(`a unix socket path has at most ${MAX_UNIX_PATH} bytes`);
    return { path: text };
  }
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text) ?? /^()()(\d{1,5})$/.exec(text);
  if (!m) throw bad('expected PORT, HOST:PORT, [IPv6]:PORT or /unix/path');
  const p = Number(m[3]);
  if (p > 65535) throw bad(`port ${p} is outside 0..65535`);
  const h = m[1] || m[2] || undefined;
  if (h !== undefined && !isIP(h) && !/^[A-Za-z0-9._-]+$/.test(h)) throw bad(`"${h}" is not an IP address or host name`);
  return h ? { host: h, port: p } : { port: p };
}

/** `--syslog`: `udp://HOST:PORT` (HOST an IP address or localhost; port 0 picks one) or `unix:/path`. */
export function parseSyslogSpec(text: string): SyslogSpec {
  const bad = (why: string): SpreadPipeError => new SpreadPipeError(ErrorCodes.INVALID_ARGUMENT, `bad syslog address "${text}": ${why}`);
  if (text.startsWith('unix:')) {
    const path = text.slice(5);
    if (!path.startsWith('/')) throw bad('expected unix:/absolute/path');
    if (Buffer.byteLength(path) > MAX_UNIX_PATH) throw bad(`a unix socket path has at most ${MAX_UNIX_PATH} bytes`);
    return { kind: 'unix', path, label: text };
  }
  const m = /^udp:\/\/(?:\[([^\]]+)\]|([^:/]+)):(\d{1,5})$/.exec(text);
  if (!m) throw bad('expected udp://HOST:PORT or unix:/path');
  const host = m[1] ?? m[2]!;
  const port = Number(m[3]);
  if (port > 65535) throw bad(`port ${port} is outside 0..65535`);
  if (!isIP(host) && host !== 'localhost') throw bad(`"${host}" is not an IP address`);
  return { kind: 'udp', host: host === 'localhost' ? '127.0.0.1' : host, port, label: text };
}
