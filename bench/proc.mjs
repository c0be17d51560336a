/**
 * Child processes and /proc readings shared by the benchmarks (bench:pipe,
 * bench:tls): every child is tracked and killed when the bench exits (a
 * SIGSTOPped one woken first), so no daemon outlives a run.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';

/** Clock ticks per second: /proc/PID/stat counts CPU time in them. */
export const TICK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const children = new Set();
process.on('exit', () => {
  for (const c of children) {
    try {
      process.kill(c.pid, 'SIGCONT');
      c.kill('SIGKILL');
    } catch {}
  }
});

/** Track `c` (killed at exit); `c.exited` resolves to its code or signal, `c.err` collects its stderr. */
export function track(c) {
  children.add(c);
  c.exited = new Promise((r) => c.on('exit', (code, sig) => (children.delete(c), r(code ?? sig))));
  c.err = '';
  c.stderr?.on('data', (b) => (c.err += b));
  return c;
}

/** `node [nodeFlags] cli args`, tracked. */
export function startNode(cli, args, stdio, nodeFlags = []) {
  return track(spawn(process.execPath, [...nodeFlags, cli, ...args], { stdio }));
}

export async function waitUntil(check, ms, what, proc) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${proc ? `; its stderr: ${proc.err.slice(-500)}` : ''}`);
    await sleep(2);
  }
}

/** /proc reads give '' once the process is gone (or a zombie without memory), never throw. */
export function procRead(pid, file) {
  try {
    return fs.readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return '';
  }
}

/** CPU seconds (user + system) of `pid` so far; NaN once it is gone. */
export function cpu(pid) {
  const f = procRead(pid, 'stat');
  if (!f) return NaN;
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / TICK; // utime + stime
}
