/** Byte sizes on the command line: 65536, 64k, 64K, 64M, 1G (binary multiples). */
import { UsageError } from './common.js';

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

export function parseSize(text: string | number, opt: string): number {
  const m = /^(\d+)\s*([kmg]?)i?b?$/i.exec(String(text).trim());
  if (!m) throw new UsageError(`bad ${opt} "${text}": expected a size like 65536, 64k, 64M or 1G`);
  const v = Number(m[1]) * UNITS[m[2]!.toLowerCase()]!;
  if (!Number.isSafeInteger(v)) throw new UsageError(`bad ${opt} "${text}": too large`);
  return v;
}
