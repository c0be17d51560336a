/**
 * Deterministic access-log lines for the top tests: ten URLs with distinct,
 * known hit counts (so a top 10 has no ties to argue about), a long tail of
 * rare URLs with query strings, IPv4 and IPv6 clients, every status class.
 */
import { prng } from '../helpers.js';

const AGENTS = ['Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0', 'curl/8.4.0', 'Wget/1.21.4', 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)'];
const REFS = ['-', 'https://www.google.com/', 'https://example.com/shop/', 'https://duckduckgo.com/?q=spread'];
const STATUS = [200, 200, 200, 200, 304, 301, 404, 403, 500, 503, 206, 201];
const METHODS = ['GET', 'GET', 'GET', 'POST', 'HEAD'];

export interface Generated {
  lines: string[];
  /** url -> hits for the ten heavy URLs. */
  heavy: Map<string, number>;
}

export function accessLines(tail: number, seed = 14): Generated {
  const r = prng(seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)]!;
  const clients = Array.from({ length: 500 }, (_, i) => (i % 25 === 0 ? `2001:db8::${i.toString(16)}` : `10.${i >> 8}.${i & 255}.${(i * 7) % 250 + 1}`));
  const heavy = new Map<string, number>();
  const urls: string[] = [];
  for (let k = 0; k < 10; k++) {
    const u = k % 3 === 0 ? `/heavy/${k}.html?lang=en&k=${k}` : `/heavy/page-${k}`;
    const n = 300 - 23 * k;
    heavy.set(u, n);
    for (let i = 0; i < n; i++) urls.push(u);
  }
  for (let i = 0; i < tail; i++) urls.push(`/tail/${Math.floor(r() * tail)}${r() < 0.4 ? `?id=${Math.floor(r() * 50)}` : ''}`);
  // Fisher-Yates with the seeded generator.
  for (let i = urls.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [urls[i], urls[j]] = [urls[j]!, urls[i]!];
  }
  let t = 1_700_000_000;
  const lines = urls.map((u) => {
    if (r() < 0.3) t++;
    const d = new Date(t * 1000);
    const ts = `${String(d.getUTCDate()).padStart(2, '0')}/${d.toLocaleString('en', { month: 'short', timeZone: 'UTC' })}/${d.getUTCFullYear()}:${d.toISOString().slice(11, 19)} +0000`;
    const status = pick(STATUS);
    const method = pick(METHODS);
    const size = status === 304 || method === 'HEAD' ? '-' : String(Math.floor(r() * 20000) + 10);
    return `${pick(clients)} - ${r() < 0.05 ? 'alice' : '-'} [${ts}] "${method} ${u} HTTP/1.1" ${status} ${size} "${pick(REFS)}" "${pick(AGENTS)}"`;
  });
  return { lines, heavy };
}
