/**
 * One writer per log file: before a file is opened for appending, a lock
 * file `.NAME.lock` beside it is created holding "PID BOOT-ID"; it is removed
 * when the file is closed. A second spread-pipe (write mode or a daemon's
 * --write) that finds a live holder does not open the file: two writers
 * appending to one file interleave half-lines. A lock whose process is gone,
 * or from before the last boot, is stale and taken over (as the spool's).
 *
 * spreadlogd holds flock(2) on the log file itself; Node has no flock, so the
 * two do not see each other's locks: stop spreadlogd before starting `write`
 * on the same files (README, "Replacing spreadlogd").
 */
import fs from 'node:fs';
import path from 'node:path';
import { alive, bootId } from '../lock-holder.js';



export function lockPathFor(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.lock`);
}

export class FileLockedError extends Error {
  readonly code = 'ELOCKED';
  constructor(
    readonly file: string,
    readonly pid: number,
  ) {
    super(`${file} is being written by another process (pid ${pid}, lock ${lockPathFor(file)})`);
  }
}

export class FileLocks {
  private readonly held = new Set<string>();
  private readonly me = `${process.pid} ${bootId()}\n`;

  /** Take the lock of `file` (the directory must exist); throws FileLockedError or the fs error. */
  acquire(file: string): void {
    if (this.held.has(file)) return;
    const lock = lockPathFor(file);
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        fs.writeFileSync(lock, this.me, { flag: 'wx', mode: 0o644 });
        this.held.add(file);
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      let owner = '';
      try {
        owner = fs.readFileSync(lock, 'latin1');
      } catch {
        continue; // removed meanwhile
      }
      const [pidText, boot] = owner.trim().split(' ');
      const pid = Number(pidText);
      if (owner === this.me) {
        // Ours from before (a close that could not remove it): keep it.
        this.held.add(file);
        return;
      }
      if (Number.isInteger(pid) && pid > 0 && boot === bootId() && alive(pid)) throw new FileLockedError(file, pid);
      // A lock being written right now reads as empty: only take it over once it is clearly stale.
      if (owner === '' && attempt === 0) continue;
      fs.rmSync(lock, { force: true });
    }
    throw new FileLockedError(file, 0);
  }

  release(file: string): void {
    if (!this.held.delete(file)) return;
    try {
      fs.unlinkSync(lockPathFor(file));
    } catch {
      // Gone already (the directory was removed): nothing is held.
    }
  }

  releaseAll(): void {
    for (const f of [...this.held]) this.release(f);
  }

  get size(): number {
    return this.held.size;
  }
}
