/** Small decoding helpers shared by tests. */
import type { PreparedSend } from '../../src/spread/client.js';

/** The destination names of a prepared send. */
export function decodeOne(p: PreparedSend): string[] {
  const out: string[] = [];
  for (let i = 0; i < p.numGroups; i++) {
    const f = p.groups.subarray(i * 32, i * 32 + 32);
    const end = f.indexOf(0);
    out.push(f.toString('latin1', 0, end < 0 ? 32 : end));
  }
  return out;
}
