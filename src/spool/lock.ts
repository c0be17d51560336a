/**
 * One spread-pipe per spool directory: a lock file holding "PID BOOT-ID".
 * A lock whose process is gone, or that was taken before the last boot (the
 * pid may since belong to another program), is stale and taken over.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCodes, SpreadPipeError, errorMessage } from '../errors.js';
import { alive, bootId } from '../lock-holder.js';



/**
 * Take the lock of `dir`; throws SPOOL_LOCKED while a live process holds it.
 * Returns true when it took over a stale lock: the last user did not close
 * the spool (a crash, SIGKILL, a power loss).
 */
export function lockSpool(dir: string): boolean {
  let stale = false;
  const file = path.join(dir, 'lock');
  const me = `${process.pid} ${bootId()}\n`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, me, { flag: 'wx', mode: 0o644 });
      return stale;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new SpreadPipeError(ErrorCodes.SPOOL, `cannot lock spool ${dir}: ${errorMessage(e)}`, { cause: e });
      }
    }
    let owner = '';
    try {
      owner = fs.readFileSync(file, 'latin1');
    } catch {
      // Removed meanwhile: try again.
    }
    const [pidText, boot] = owner.trim().split(' ');
    const pid = Number(pidText);
    // A pid from before the last boot, or of a dead process, holds nothing.
    if (Number.isInteger(pid) && pid > 0 && boot === bootId() && alive(pid)) {
      throw new SpreadPipeError(ErrorCodes.SPOOL_LOCKED, `spool ${dir} is in use by process ${pid}`);
    }
    fs.rmSync(file, { force: true });
    stale = true;
  }
  throw new SpreadPipeError(ErrorCodes.SPOOL_LOCKED, `spool ${dir} is being locked by another process`);
}

export function unlockSpool(dir: string): void {
  fs.rmSync(path.join(dir, 'lock'), { force: true });
}
