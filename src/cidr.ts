/**
 * CIDR blocks for the daemon's --allow, IPv4 and IPv6. IPv4 clients seen on a
 * dual-stack socket as ::ffff:a.b.c.d match IPv4 blocks.
 */
import { isIP } from 'node:net';
import { ErrorCodes, SpreadPipeError } from './errors.js';

export interface Cidr {
  readonly text: string;
  readonly bytes: Uint8Array;
  readonly prefix: number;
}

function v4(addr: string): Uint8Array {
  return Uint8Array.from(addr.split('.').map(Number));
}

function v6(addr: string): Uint8Array {
  let a = addr;
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  const extra: number[] = [];
  if (tail) {
    const b = v4(tail[1]!);
    extra.push((b[0]! << 8) | b[1]!, (b[2]! << 8) | b[3]!);
    a = a.slice(0, -tail[1]!.length).replace(/:$/, '') || ':';
    if (a.endsWith(':') && !a.endsWith('::')) a += ':';
  }
  const [head, rest] = a.includes('::') ? a.split('::') : [a, undefined];
  const h = head ? head.split(':').filter(Boolean).map((x) => parseInt(x, 16)) : [];
  const r = rest !== undefined && rest ? rest.split(':').filter(Boolean).map((x) => parseInt(x, 16)) : [];
  const fill = 8 - h.length - r.length - extra.length;
  const words = [...h, ...Array<number>(rest !== undefined ? fill : 0).fill(0), ...r, ...extra];
  const out = new Uint8Array(16);
  words.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  return out;
}

/** Parse `10.0.0.0/8`, `192.0.2.7` (a /32), `::1`, `fd00::/8`. */
export function parseCidr(text: string): Cidr {
  const [addr, bits] = text.split('/');
  const fam = isIP(addr ?? '');
  const max = fam === 4 ? 32 : 128;
  const prefix = bits === undefined ? max : /^\d{1,3}$/.test(bits) ? Number(bits) : NaN;
  if (!fam || !(prefix >= 0 && prefix <= max)) {
    throw new SpreadPipeError(ErrorCodes.INVALID_ARGUMENT, `bad CIDR "${text}": expected ADDRESS[/BITS], e.g. 10.0.0.0/8 or fd00::/8`);
  }
  return { text, bytes: fam === 4 ? v4(addr!) : v6(addr!), prefix };
}

/** Does `address` (as a socket reports it) fall in `c`? */
export function cidrMatch(c: Cidr, address: string): boolean {
  const fam = isIP(address);
  if (!fam) return false;
  let b = fam === 4 ? v4(address) : v6(address);
  if (b.length === 16 && c.bytes.length === 4) {
    const mapped = b.slice(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
    if (!mapped) return false;
    b = b.slice(12);
  }
  if (b.length !== c.bytes.length) return false;
  for (let bit = 0; bit < c.prefix; bit += 8) {
    const n = Math.min(8, c.prefix - bit);
    const mask = (0xff << (8 - n)) & 0xff;
    if ((b[bit / 8]! & mask) !== (c.bytes[bit / 8]! & mask)) return false;
  }
  return true;
}
