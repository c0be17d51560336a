/** #13: one writer per log file. */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileLockedError, FileLocks, lockPathFor } from '../../src/write/file-lock.js';
import { defer, tempDir } from '../helpers.js';

describe('#13 file locks', () => {
  it('#13: a live holder keeps the file; release frees it', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'a.log');
    // Another live process holding the lock (a sleeping child).
    const child = spawn('sleep', ['30']);
    defer(() => child.kill('SIGKILL'));
    const boot = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim();
    fs.writeFileSync(lockPathFor(file), `${child.pid} ${boot}\n`);
    const locks = new FileLocks();
    expect(() => locks.acquire(file)).toThrow(FileLockedError);
    expect(() => locks.acquire(file)).toThrow(`pid ${child.pid}`);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    // The holder is gone: its lock is stale and taken over.
    locks.acquire(file);
    expect(fs.readFileSync(lockPathFor(file), 'latin1')).toBe(`${process.pid} ${boot}\n`);
    locks.release(file);
    expect(fs.existsSync(lockPathFor(file))).toBe(false);
  });

  it('#13: a lock from before the last boot is stale', () => {
    const dir = tempDir();
    const file = path.join(dir, 'b.log');
    fs.writeFileSync(lockPathFor(file), `1 not-this-boot\n`);
    const locks = new FileLocks();
    locks.acquire(file);
    expect(locks.size).toBe(1);
    locks.releaseAll();
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('#13: the lock file is hidden next to the log (a *.log glob does not see it)', () => {
    expect(lockPathFor('/var/log/x/access.log')).toBe('/var/log/x/.access.log.lock');
  });
});
