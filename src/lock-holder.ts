/**
 * Who holds a lock file "PID BOOT-ID" (the spool's and each log file's): the
 * boot id tells a pid from before the last boot (since reused by another
 * program) from a live holder.
 */
import fs from 'node:fs';

let bootIdCache: string | undefined;

/** This boot's id, or '-' where /proc does not say. */
export function bootId(): string {
  if (bootIdCache === undefined) {
    try {
      bootIdCache = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim();
    } catch {
      bootIdCache = '-';
    }
  }
  return bootIdCache;
}

/** A process with this pid exists (EPERM: it does, and belongs to another user). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
