/**
 * Daemon names as Spread spells them, plus the host:port form users expect,
 * and name validation shared by client and daemon.
 */
import { isIP } from 'node:net';
import { DEFAULT_SPREAD_PORT, ILLEGAL_GROUP, ILLEGAL_SPREAD, MAX_GROUP_NAME, MAX_PRIVATE_NAME, UNIX_SOCKET_DIR, isNameByte } from './constants.js';
import { ErrorCodes, SpreadPipeError } from '../errors.js';

export type DaemonAddress =
  | { kind: 'unix'; path: string; label: string }
  | { kind: 'tcp'; host: string; port: number; label: string };

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
 */
export function parseDaemonAddress(spec: string): DaemonAddress {
  const s = spec.trim();
  if (s === '') return parseDaemonAddress(String(DEFAULT_SPREAD_PORT));
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

function checkName(name: string, max: number): string | undefined {
  if (name.length === 0) return 'empty';
  const b = Buffer.from(name, 'latin1');
  if (b.length > max || Buffer.byteLength(name, 'utf8') !== b.length) return `longer than ${max} characters`;
  for (const c of b) if (!isNameByte(c)) return `character ${JSON.stringify(String.fromCharCode(c))} not allowed (use $ to ~, no # or space)`;
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
