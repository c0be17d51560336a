/**
 * Claiming a unix socket path, for the daemon's stream sockets and the
 * syslog bridge's datagram socket alike. A socket file left by a process
 * that died is removed (as real Spread does); one a live process still
 * serves is not (two daemons, or two bridges, on one path would each get
 * part of the traffic), and a file that is not a socket is never touched.
 *
 * The probe is a stream connect() whatever the path is for: a live stream
 * listener accepts it, a live socket of another type refuses it with
 * EPROTOTYPE, and only a socket nobody has bound refuses it with
 * ECONNREFUSED, which is the one case we remove the file. Any other error
 * (EACCES, ...) leaves it alone: we could not tell.
 */
import fs from 'node:fs';
import net from 'node:net';
import { ErrorCodes, SpreadPipeError, errorMessage } from './errors.js';

/** What the caller will bind: a live socket of the same kind is described as such. */
export type SocketKind = 'stream' | 'dgram';

const cannot = (path: string, why: string, cause?: unknown): SpreadPipeError =>
  new SpreadPipeError(ErrorCodes.LISTEN, `cannot listen on ${path}: ${why}`, cause === undefined ? undefined : { cause });

/** Make `path` free to bind, or throw SpreadPipeError LISTEN saying who holds it. */
export async function claimSocketPath(path: string, kind: SocketKind): Promise<void> {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw cannot(path, 'exists and is not a socket');
  const probe = await new Promise<'stream' | 'other' | 'stale' | Error>((resolve) => {
    const c = net.connect({ path });
    c.once('connect', () => {
      c.destroy();
      resolve('stream');
    });
    c.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNREFUSED' || e.code === 'ENOENT') resolve('stale');
      else if (e.code === 'EPROTOTYPE') resolve('other');
      else resolve(e);
    });
  });
  if (probe === 'stale') {
    fs.rmSync(path, { force: true });
    return;
  }
  if (probe instanceof Error) throw cannot(path, `cannot tell whether a live process serves it: ${errorMessage(probe)}`, probe);
  if (kind === 'stream') throw cannot(path, probe === 'stream' ? 'in use, another daemon is serving it' : 'in use by another process (a datagram socket)');
  throw cannot(path, probe === 'other' ? 'in use by another process' : 'in use by another process (a stream socket, a Spread daemon perhaps)');
}

/**
 * The remover of the socket just bound at `path`: it unlinks the path only
 * while it is still that socket, since a successor may have claimed the path
 * since. Same inode and same birth time: a removed socket's inode number is
 * soon given to the next file (tmpfs), so the number alone is not enough.
 * Safe to call twice, and in an 'exit' handler.
 */
export function socketRemover(path: string): () => void {
  const id = (st: fs.Stats): string => `${st.dev}:${st.ino}:${st.birthtimeMs}`;
  const mine = id(fs.lstatSync(path));
  return () => {
    try {
      if (id(fs.lstatSync(path)) === mine) fs.rmSync(path, { force: true });
    } catch {
      // Already gone.
    }
  };
}
