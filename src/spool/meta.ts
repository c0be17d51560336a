/** meta.json: small state kept for the user of a spool (the --ack stream name). */
import fs from 'node:fs';
import path from 'node:path';
import { syncDir } from './segments.js';

/** What meta.json holds; {} when missing or unreadable. */
export function readMeta(dir: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8'));
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** Replace meta.json atomically (written, synced, renamed). */
export function writeMeta(dir: string, meta: Record<string, unknown>): void {
  const file = path.join(dir, 'meta.json');
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w', 0o644);
  try {
    fs.writeSync(fd, `${JSON.stringify(meta)}\n`);
    fs.fdatasyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  syncDir(dir);
}
