/**
 * FNV-1a, 32 bits: stable across runs and machines. Pipe mode hashes a vhost
 * into a bucket with it (every web server picks the same one); the daemon
 * hashes its name into its ring id.
 */
export function fnv1a(b: Buffer | Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  return h >>> 0;
}
