/**
 * One claimSocketPath for the daemon's stream sockets and the syslog
 * bridge's datagram socket (#12): a stale socket is replaced, a live one of
 * either type is refused with LISTEN and a message naming who holds it, and
 * a file that is not a socket is never touched.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createSocket as createUnixSocket } from 'unix-dgram';
import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../src/errors.js';
import { claimSocketPath, socketRemover } from '../src/socket-path.js';
import { defer, tempDir } from './helpers.js';

async function liveStream(file: string): Promise<void> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(file, r));
  defer(() => new Promise<void>((r) => srv.close(() => r())));
}

function liveDgram(file: string): void {
  const s = createUnixSocket('unix_dgram');
  s.bind(file);
  defer(() => s.close());
}

describe('claimSocketPath (#12: one copy for the daemon and the syslog listener)', () => {
  it('a missing path is free; a stale socket (nobody bound) is removed, for either kind', async () => {
    const dir = tempDir();
    await claimSocketPath(path.join(dir, 'none.sock'), 'stream');
    for (const kind of ['stream', 'dgram'] as const) {
      const file = path.join(dir, `stale-${kind}.sock`);
      const dead = createUnixSocket('unix_dgram');
      dead.bind(file);
      dead.close(); // the file stays
      expect(fs.lstatSync(file).isSocket()).toBe(true);
      await claimSocketPath(file, kind);
      expect(fs.existsSync(file)).toBe(false);
    }
  });

  it.each([
    ['stream', 'stream', /^cannot listen on .*: in use, another daemon is serving it$/],
    ['stream', 'dgram', /^cannot listen on .*: in use by another process \(a datagram socket\)$/],
    ['dgram', 'dgram', /^cannot listen on .*: in use by another process$/],
    ['dgram', 'stream', /^cannot listen on .*: in use by another process \(a stream socket, a Spread daemon perhaps\)$/],
  ] as const)('a %s claim of a path a live %s socket serves: LISTEN, and the socket stays', async (kind, live, message) => {
    const file = path.join(tempDir(), 'live.sock');
    if (live === 'stream') await liveStream(file);
    else liveDgram(file);
    const ino = fs.lstatSync(file).ino;
    await expect(claimSocketPath(file, kind)).rejects.toMatchObject({ code: ErrorCodes.LISTEN, message: expect.stringMatching(message) });
    expect(fs.lstatSync(file).ino).toBe(ino);
  });

  it('a file that is not a socket: LISTEN, untouched', async () => {
    const file = path.join(tempDir(), 'precious.log');
    fs.writeFileSync(file, 'keep me\n');
    await expect(claimSocketPath(file, 'dgram')).rejects.toMatchObject({ code: ErrorCodes.LISTEN, message: `cannot listen on ${file}: exists and is not a socket` });
    expect(fs.readFileSync(file, 'utf8')).toBe('keep me\n');
  });

  it('socketRemover removes its own socket only, once', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'mine.sock');
    const mine = createUnixSocket('unix_dgram');
    mine.bind(file);
    const remove = socketRemover(file);
    mine.close();
    fs.rmSync(file);
    liveDgram(file); // a successor took the path
    remove();
    expect(fs.lstatSync(file).isSocket()).toBe(true);
    const other = socketRemover(file);
    other();
    other();
    expect(fs.existsSync(file)).toBe(false);
  });
});
