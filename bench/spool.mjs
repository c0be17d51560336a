#!/usr/bin/env node
/**
 * Spool benchmark (#12), run on demand, never in CI: the cost of the spool
 * alone, in-process, per record.
 *
 *   npm run build && node bench/spool.mjs
 *   CASES=pipe,memory RUNS=9 node bench/spool.mjs             # some cases only
 *   BASE=/other/checkout/dist/spool.js node bench/spool.mjs   # side by side with another build
 *
 * Cases (records of ~200 bytes with a route, as pipe mode stores lines):
 *   steady   append 512, read 512, commit: a publisher that keeps up (from memory)
 *   backlog  append N, then read and commit them all (from disk, past the memory budget)
 *   pipe     pipe mode's path with --spool (#16): SpoolQueue.pushLine of host tag + line
 *            512 times (framed into the spool, copied into memory), shiftInto 512 (the
 *            spool written, then sent from memory), commit
 *   memory   the same 512 in and out of a LineQueue, pipe mode's queue without --spool:
 *            pipe minus memory is what the spool adds to a line
 *   delete   the commit() that lets go of three acknowledged, synced 16 MiB segments (two
 *            deleted, one kept to be written again): the event loop's wall time per segment
 *            deleted (#16: unlink(2) in the background)
 * Runs alternate between the builds so that ratios are paired on a noisy
 * machine; median [min-max] CPU ns per record (user + system: append, flush,
 * read, commit).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const N = Number(process.env.N ?? 300_000);
const RUNS = Number(process.env.RUNS ?? 5);
const builds = [['this', path.join(ROOT, 'dist/spool.js')]];
if (process.env.BASE) builds.unshift(['base', path.resolve(process.env.BASE)]);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'spread-pipe-bench-spool-'));
process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }));

const lines = Array.from({ length: 1024 }, (_, i) => Buffer.from(`web1 10.0.${i % 256}.${i % 7} - - [01/Dec/2026:08:00:00 +0000] "GET /pub/file-${i}.iso HTTP/1.1" 200 ${1000 + i * 37} "-" "Wget/1.21 (linux-gnu)" ${'x'.repeat(i % 40)}\n`));
const ROUTE = '1e bench';
/** CPU (user + system) since `t`, in ns: steadier than wall time on a shared machine. */
const cpuNs = (t) => {
  const d = process.cpuUsage(t);
  return (d.user + d.system) * 1000;
};

function steady(Spool, dir) {
  const s = Spool.open(dir, { syncInterval: 0 });
  const t = process.cpuUsage();
  for (let n = 0; n < N; ) {
    for (let i = 0; i < 512; i++, n++) s.append(lines[n & 1023], ROUTE);
    s.flush();
    const got = s.read(512);
    s.commit(got[got.length - 1].id + 1);
  }
  const ns = cpuNs(t);
  if (s.stats.readFromDisk !== 0) throw new Error('steady read from disk');
  s.close();
  return ns / N;
}

function backlog(Spool, dir) {
  const s = Spool.open(dir, { syncInterval: 0, maxBytes: 1024 * 1024 * 1024 });
  const t = process.cpuUsage();
  for (let n = 0; n < N; n++) s.append(lines[n & 1023], ROUTE);
  s.flush();
  let read = 0;
  for (let got = s.read(512); got.length; got = s.read(512)) {
    read += got.length;
    s.commit(got[got.length - 1].id + 1);
  }
  const ns = cpuNs(t);
  if (read !== N || s.stats.readFromDisk < N / 2) throw new Error(`backlog read ${read}, ${s.stats.readFromDisk} from disk`);
  s.close();
  return ns / N;
}

/** The lines without their tag (pipe mode passes the tag and the line apart), and one route for all. */
const TAG = Buffer.from('web1 ');
const bare = lines.map((l) => l.subarray(TAG.length, l.length - 1));

/**
 * N lines through `q` as pipe mode moves them: 512 pushed (tag and line apart, one route), then the
 * 512 taken out as the sender takes them (a range each), their lengths checked; `round(out)` after
 * each 512, with the last one taken. Returns CPU ns per line.
 */
function pour(q, m, round = () => {}) {
  q.reuseBlocks();
  const route = m.prepareSend('bench');
  const out = { route: undefined, buf: Buffer.alloc(0), start: 0, end: 0, lines: 0, id: undefined };
  const t = process.cpuUsage();
  for (let n = 0; n < N; n += 512) {
    const to = Math.min(N, n + 512);
    for (let i = n; i < to; i++) q.pushLine(TAG, bare[i & 1023], route);
    for (let i = n; i < to; i++) if (!q.shiftInto(out) || out.end - out.start !== TAG.length + bare[i & 1023].length + 1) throw new Error('lost a line');
    round(out);
  }
  return cpuNs(t) / N;
}

function pipe(Spool, dir, m) {
  const s = Spool.open(dir, { syncInterval: 0 });
  const q = new m.SpoolQueue(s, () => {
    throw new Error('spool error');
  });
  const ns = pour(q, m, (last) => s.commit(last.id + 1));
  if (s.stats.readFromDisk !== 0) throw new Error('pipe read from disk');
  s.close();
  return ns;
}

function memory(_Spool, _dir, m) {
  return pour(new m.LineQueue(100_000, 32 * 1024 * 1024, 'drop-newest'), m);
}

/**
 * The event loop's time in the commit() that deletes acknowledged segments: three of the default 16 MiB,
 * written and synced (as the spool syncs one once the next starts, and the current one every second), then
 * one commit past them under a bound of four: two deleted, one kept as the spare (a rename). Wall time
 * per segment deleted: the event loop waits for the filesystem to free the file's blocks. The spool's own
 * cache of the records appended (a Spool used alone keeps 8 MiB of them) is let go in the same call.
 */
async function del(Spool, dir) {
  const SEG = 16 * 1024 * 1024;
  const s = Spool.open(dir, { syncInterval: 0, segmentBytes: SEG, maxBytes: 4 * SEG - 64 * 1024 });
  const segs = () => fs.readdirSync(dir).filter((f) => f.endsWith('.spool')).sort();
  for (let n = 0; segs().length < 4; n++) s.append(lines[n & 1023], ROUTE);
  s.flush();
  for (const f of segs()) {
    const fd = fs.openSync(path.join(dir, f), 'r');
    fs.fdatasyncSync(fd);
    fs.closeSync(fd);
  }
  // The writer closes a full segment once its sync is done, in the background: a file still open is only
  // unlinked by unlink(2), and freed at its last close.
  await new Promise((r) => setTimeout(r, 300));
  const t = process.hrtime.bigint();
  s.commit(Number(segs()[3].slice(0, 16)));
  const us = Number(process.hrtime.bigint() - t) / 1000;
  s.close();
  return us / 2;
}

const ALL = { steady, backlog, pipe, memory, delete: del };
/** What a case's figure is, where it is not CPU ns per record. */
const UNITS = { delete: 'us of event loop per 16 MiB segment deleted' };
/** CASES=pipe,memory: only those. */
const wanted = process.env.CASES?.split(',');
const unknown = wanted?.filter((c) => !(c in ALL)) ?? [];
if (unknown.length) {
  console.error(`bench/spool.mjs: unknown CASES ${unknown.join(',')} (cases: ${Object.keys(ALL).join(',')})`);
  process.exit(2);
}
const cases = Object.fromEntries(Object.entries(ALL).filter(([c]) => !wanted || wanted.includes(c)));
const mods = [];
for (const [name, file] of builds) {
  // pipe and memory take the queues from the same build as the spool.
  const dist = path.dirname(file);
  const load = async (f) => import(pathToFileURL(path.join(dist, f)).href);
  const [{ Spool }, { SpoolQueue }, { LineQueue }, { prepareSend }] = await Promise.all([load('spool.js'), load('spool-queue.js'), load('queue.js'), load('spread/send.js')]);
  mods.push([name, Spool, { SpoolQueue, LineQueue, prepareSend }]);
}
const results = {};
let k = 0;
for (let r = 0; r < RUNS + 1; r++) {
  for (const [c, fn] of Object.entries(cases)) {
    for (const [name, Spool, m] of mods) {
      const dir = path.join(work, `s${k++}`);
      const ns = await fn(Spool, dir, m);
      fs.rmSync(dir, { recursive: true, force: true });
      if (r > 0) (results[`${c} ${name}`] ??= []).push(ns); // the first round warms up
    }
  }
}
const med = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
console.log(`spool bench: ${N} records of ~${Math.round(lines.reduce((a, b) => a + b.length, 0) / lines.length)} B, ${RUNS} runs, node ${process.version}; CPU ns per record (unless the row says), median [min-max]`);
for (const c of Object.keys(cases)) {
  const row = mods.map(([name]) => {
    const a = results[`${c} ${name}`];
    return `${name} ${med(a).toFixed(0)} [${Math.min(...a).toFixed(0)}-${Math.max(...a).toFixed(0)}]`;
  });
  const ratio = mods.length === 2 ? `  this/base ${(med(results[`${c} this`]) / med(results[`${c} base`])).toFixed(2)}` : '';
  console.log(`${c.padEnd(8)} ${row.join('   ')}${ratio}${UNITS[c] ? `  (${UNITS[c]})` : ''}`);
}
