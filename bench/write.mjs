#!/usr/bin/env node
/**
 * `spread-pipe write` against spreadlogd 2.0.1 (issue 13), run on demand,
 * never in CI:
 *
 *   npm run bench:write                      # built-in daemon, `write` only: no external program
 *   SPREAD_CMD='/opt/spread/sbin/spread -n localhost -c {conf}' \
 *   SPREADLOGD_CMD='/opt/spreadlogd/sbin/spreadlogd -D -c {conf}' \
 *   LINEPUB_CMD='/opt/baseline/sp-linepub -s {daemon} -g {group} -b {batch}' \
 *   LD_LIBRARY_PATH=/opt/spread/lib node bench/write.mjs
 *
 * The same stream (LINES Apache combined lines of ~250 bytes, "web1 "
 * in front, one line per message and BATCH lines per message) goes from a
 * publisher through one daemon to one writer at a time, which appends it to
 * a file; spreadlogd and `write` take turns run by run, each with a daemon
 * started afresh. The bench starts the programs it is given and builds
 * none of them; {conf} is a file it writes (a spread.conf for one daemon on
 * 127.0.0.1:PORT, or a spreadlogd.conf with one Log), {daemon}, {group} and
 * {batch} are filled in. Without SPREAD_CMD the daemon is
 * `spread-pipe --daemon`; without LINEPUB_CMD the publisher is a Node child
 * using the project's SpreadClient; without SPREADLOGD_CMD only `write` runs.
 *
 * Time runs from the first line published to the file holding every byte
 * (polled every 2 ms) and the file is compared with what was sent: a
 * writer cut off by the daemon (real Spread drops a session 1000 messages
 * behind) fails the run rather than looking fast. Writer CPU is
 * utime+stime from /proc/PID/stat over that window, per line.
 *
 * WARMUP=N first sends N other lines the same way, waits until they are
 * written, then measures: the steady state of a writer that runs for days
 * (Node's JIT compiles on other threads during the first seconds, counted as
 * the writer's CPU in a cold run); spreadlogd gets the same warm-up.
 *
 * Environment: LINES (200000), WARMUP (0), RUNS (3), BATCHES (1,32), PORT (4951; runs take
 * PORT, PORT+2, ... PORT+38 in turn),
 * TIMEOUT_S (120), SPREAD_CMD, SPREADLOGD_CMD, LINEPUB_CMD; WRITE_NODE_ARGS (e.g.
 * `--cpu-prof --cpu-prof-dir=/tmp/prof`) are given to node for `write`; DEBUG=1 traces the steps.
 */
import { spawn, fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'dist', 'main.js');
const SELF = fileURLToPath(import.meta.url);
const GROUP = 'logs';
const LINES = Number(process.env.LINES ?? 200_000);
const WARMUP = Number(process.env.WARMUP ?? 0);
const RUNS = Number(process.env.RUNS ?? 3);
const BATCHES = (process.env.BATCHES ?? '1,32').split(',').map(Number);
const BASE_PORT = Number(process.env.PORT ?? 4951);
const TIMEOUT_MS = Number(process.env.TIMEOUT_S ?? 120) * 1000;
const TICK = 100; // USER_HZ on Linux

// ---- the stream: deterministic combined-format lines ----------------------
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function makeStream(n) {
  const r = rng(13);
  const pick = (a) => a[Math.floor(r() * a.length)];
  const agents = ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36', 'Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0', 'curl/8.4.0', 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1'];
  const lines = [];
  let t = 1_700_000_000;
  for (let i = 0; i < n; i++) {
    t += r() < 0.25 ? 1 : 0;
    const d = new Date(t * 1000).toUTCString().split(' ');
    const ip = `${1 + Math.floor(r() * 223)}.${Math.floor(r() * 256)}.${Math.floor(r() * 256)}.${1 + Math.floor(r() * 254)}`;
    const p = `/${pick(['shop', 'blog', 'api/v1', 'static', 'docs', 'news/2024'])}/${pick(['index', 'item', 'view', 'cart', 'feed'])}/${Math.floor(r() * 999999)}${pick(['', '.html', '.png', '.json'])}`;
    lines.push(`web1 ${ip} - - [${d[1]}/${d[2]}/${d[3]}:${d[4]} +0000] "GET ${p} HTTP/1.1" ${pick([200, 200, 200, 304, 404])} ${Math.floor(r() * 30000)} "https://www.example.com/" "${pick(agents)}"\n`);
  }
  return lines;
}

// ---- child: the Node publisher (no LINEPUB_CMD) --------------------------
if (process.argv[2] === 'pub') {
  const { SpreadClient } = await import(path.join(ROOT, 'dist', 'spread', 'client.js'));
  const { RELIABLE_MESS } = await import(path.join(ROOT, 'dist', 'spread', 'constants.js'));
  const [, , , daemon, batchText, file] = process.argv;
  const batch = Number(batchText);
  const data = fs.readFileSync(file, 'latin1').split(/(?<=\n)/);
  const c = await SpreadClient.connect({ daemon, membership: false });
  c.on('close', () => {});
  process.send({ type: 'ready' });
  await new Promise((r) => process.once('message', r));
  for (let i = 0; i < data.length; i += batch) {
    const ok = c.multicast(GROUP, Buffer.from(data.slice(i, i + batch).join(''), 'latin1'), { service: RELIABLE_MESS });
    if (!ok) await new Promise((r) => c.once('drain', r));
  }
  c.flush();
  await c.disconnect(10_000);
  process.exit(0);
}

// ---- parent ---------------------------------------------------------------
const children = new Set();
const track = (c) => (children.add(c), c.once('exit', () => children.delete(c)), c);
const killAll = () => {
  for (const c of children) c.kill('SIGKILL');
};
process.on('exit', killAll);
process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const ticks = (pid) => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  const s = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return { user: Number(s[11]), sys: Number(s[12]) };
};
const fill = (cmd, vars) => cmd.replace(/\{(\w+)\}/g, (_, k) => vars[k]);

async function waitFor(check, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Each run gets its own ports (PORT, PORT+2, ...): a daemon just killed may still hold its own. */
let runIndex = 0;

async function startDaemon(dir) {
  const PORT = BASE_PORT + 2 * (runIndex++ % 20);
  if (process.env.SPREAD_CMD) {
    const conf = path.join(dir, 'spread.conf');
    fs.mkdirSync(path.join(dir, 'run'), { recursive: true });
    fs.writeFileSync(conf, `Spread_Segment 127.0.0.255:${PORT} {\n  localhost 127.0.0.1\n}\nDaemonUser = ${os.userInfo().username}\nDaemonGroup = ${os.userInfo().username}\nRuntimeDir = ${dir}/run\nEventLogFile = ${dir}/spread.log\n`);
    const p = track(spawn('sh', ['-c', `exec ${fill(process.env.SPREAD_CMD, { conf })}`], { stdio: 'ignore' }));
    return { proc: p, spec: `${PORT}@127.0.0.1` };
  }
  const p = track(spawn(process.execPath, [CLI, '--daemon', '--name', 'localhost', '--no-unix', '--listen', `127.0.0.1:${PORT}`], { stdio: ['ignore', 'ignore', 'pipe'] }));
  return { proc: p, spec: `${PORT}@127.0.0.1` };
}

/** Connect and join with membership; resolves once the group has `n` members (the probe included). */
async function probe(spec, n) {
  const { SpreadClient } = await import(path.join(ROOT, 'dist', 'spread', 'client.js'));
  return waitFor(
    async () => {
      let c;
      try {
        c = await SpreadClient.connect({ daemon: spec, membership: true, connectTimeout: 1000 });
      } catch {
        return false;
      }
      c.on('close', () => {});
      const ok = await new Promise((resolve) => {
        const t = setTimeout(() => resolve(false), 500);
        c.on('message', (ev) => {
          if (ev.kind === 'membership' && ev.info.group === GROUP && ev.info.members.length >= n) {
            clearTimeout(t);
            resolve(true);
          }
        });
        c.join(GROUP);
      });
      await c.disconnect().catch(() => {});
      return ok;
    },
    20_000,
    `${n - 1} writer(s) joined`,
  );
}

async function startWriter(kind, dir, spec, out) {
  if (kind === 'spreadlogd') {
    const conf = path.join(dir, 'spreadlogd.conf');
    const [port, host] = spec.split('@');
    fs.writeFileSync(conf, `BufferSize = 262144\nSpread {\n  Port = ${port}\n  Host = ${host}\n  Log {\n    Group = ${GROUP}\n    File = ${out}\n  }\n}\n`);
    return track(spawn('sh', ['-c', `exec ${fill(process.env.SPREADLOGD_CMD, { conf })}`], { stdio: 'ignore' }));
  }
  const nodeArgs = process.env.WRITE_NODE_ARGS ? process.env.WRITE_NODE_ARGS.split(' ') : [];
  // stderr to a file (a pipe nobody reads could fill and stall it): shown when a run fails.
  const err = fs.openSync(path.join(dir, 'writer.err'), 'w');
  const p = track(spawn(process.execPath, [...nodeArgs, CLI, 'write', '-s', spec, '--write', `${GROUP}=${out}`, '--no-dedup', '--no-lock'], { stdio: ['ignore', 'ignore', err] }));
  fs.closeSync(err);
  return p;
}

async function publish(spec, batch, streamFile) {
  if (process.env.LINEPUB_CMD) {
    const p = track(spawn('sh', ['-c', `exec ${fill(process.env.LINEPUB_CMD, { daemon: spec, group: GROUP, batch })} < ${streamFile}`], { stdio: 'ignore' }));
    return { go: () => {}, done: new Promise((r) => p.once('exit', r)) };
  }
  const p = track(fork(SELF, ['pub', spec, String(batch), streamFile], { stdio: 'ignore' }));
  await new Promise((r) => p.once('message', r));
  return { go: () => p.send('go'), done: new Promise((r) => p.once('exit', r)) };
}

const debug = (...a) => process.env.DEBUG && console.error(new Date().toISOString(), ...a);

async function runOnce(kind, batch, stream, expectedStream, warm) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-write-'));
  const out = path.join(dir, 'out.log');
  const streamFile = path.join(dir, 'stream');
  fs.writeFileSync(streamFile, stream);
  const warmFile = path.join(dir, 'warm');
  fs.writeFileSync(warmFile, warm);
  const expected = Buffer.concat([Buffer.from(warm, 'latin1'), expectedStream]);
  const d = await startDaemon(dir);
  try {
    await probe(d.spec, 1);
    debug('daemon up');
    const w = await startWriter(kind, dir, d.spec, out);
    await probe(d.spec, 2);
    debug(kind, 'joined');
    if (warm.length) {
      const wp = await publish(d.spec, batch, warmFile);
      wp.go();
      await waitFor(() => (fs.existsSync(out) && fs.statSync(out).size >= warm.length) || w.exitCode !== null, TIMEOUT_MS, 'the warm-up to be written');
      await wp.done;
      debug('warm-up written');
    }
    const pub = await publish(d.spec, batch, streamFile);
    const c0 = ticks(w.pid);
    const t0 = performance.now();
    pub.go();
    await waitFor(() => (fs.existsSync(out) && fs.statSync(out).size >= expected.length) || w.exitCode !== null, TIMEOUT_MS, 'the file to be complete').catch(() => {});
    const secs = (performance.now() - t0) / 1000;
    const c1 = ticks(w.pid);
    const cpu = (c1.user + c1.sys - c0.user - c0.sys) / TICK;
    const sysShare = (c1.sys - c0.sys) / Math.max(1, c1.user + c1.sys - c0.user - c0.sys);
    debug('file complete or timed out');
    await pub.done;
    debug('publisher done');
    const ok = fs.existsSync(out) && fs.readFileSync(out).equals(expected);
    const got = fs.existsSync(out) ? fs.readFileSync(out, 'latin1').split('\n').length - 1 - WARMUP : 0;
    w.kill(kind === 'spreadlogd' ? 'SIGKILL' : 'SIGTERM');
    await new Promise((r) => (w.exitCode !== null ? r() : w.once('exit', r)));
    if (!ok && fs.existsSync(path.join(dir, 'writer.err'))) process.stderr.write(`  (${kind} stderr) ${fs.readFileSync(path.join(dir, 'writer.err'), 'latin1').trim().split('\n').filter((l) => !/stats: /.test(l)).slice(-6).join('\n  ')}\n`);
    if (!ok && fs.existsSync(path.join(dir, 'spread.log'))) process.stderr.write(`  (daemon log) ${fs.readFileSync(path.join(dir, 'spread.log'), 'latin1').trim().split('\n').filter((l) => /session|kill|drop|disconnect/i.test(l)).slice(-5).join('\n  ')}\n`);
    return { ok, got, linesPerSec: LINES / secs, usPerLine: (cpu * 1e6) / LINES, sysShare };
  } finally {
    // Real Spread may sit on SIGTERM: SIGKILL after a grace period (its state is not measured).
    d.proc.kill('SIGTERM');
    const grace = setTimeout(() => d.proc.kill('SIGKILL'), 2000);
    await new Promise((r) => (d.proc.exitCode !== null || d.proc.signalCode !== null ? r() : d.proc.once('exit', r)));
    clearTimeout(grace);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN;
};
const k = (v) => (v >= 1e5 ? `${Math.round(v / 1000)}k` : `${(v / 1000).toFixed(1)}k`);

async function main() {
  const kinds = process.env.SPREADLOGD_CMD ? ['spreadlogd', 'write'] : ['write'];
  const all = makeStream(LINES + WARMUP);
  const warm = all.slice(0, WARMUP).join('');
  const stream = all.slice(WARMUP).join('');
  const expected = Buffer.from(stream, 'latin1');
  console.log(`bench:write  daemon=${process.env.SPREAD_CMD ? 'real Spread (SPREAD_CMD)' : 'spread-pipe --daemon'}  publisher=${process.env.LINEPUB_CMD ? 'LINEPUB_CMD' : 'SpreadClient (Node)'}  lines=${LINES} (${(expected.length / 1e6).toFixed(1)} MB)  warm-up=${WARMUP}  runs=${RUNS}  cpus=${os.cpus().length} load=${os.loadavg()[0].toFixed(1)}`);
  const results = new Map();
  for (const batch of BATCHES) {
    for (let run = 0; run < RUNS; run++) {
      for (const kind of kinds) {
        let r;
        try {
          r = await runOnce(kind, batch, stream, expected, warm);
        } catch (e) {
          r = { ok: false, got: 0, linesPerSec: NaN, usPerLine: NaN, error: e.message };
        }
        const key = `${kind} ${batch}`;
        if (!results.has(key)) results.set(key, []);
        results.get(key).push(r);
        console.log(`  ${kind.padEnd(10)} ${String(batch).padStart(2)} line(s)/msg run ${run + 1}: ${r.ok ? 'ok' : `FAIL (${r.got}/${LINES} lines${r.error ? `, ${r.error}` : ''})`} ${k(r.linesPerSec)} lines/s, ${r.usPerLine.toFixed(2)} us CPU/line (${Math.round((r.sysShare ?? NaN) * 100)}% in the kernel)`);
      }
    }
  }
  console.log('\n| writer | lines/msg | lines/s (median [min-max], ok runs) | writer CPU us/line (median) |\n|---|---|---|---|');
  for (const batch of BATCHES) {
    for (const kind of kinds) {
      const rs = results.get(`${kind} ${batch}`).filter((r) => r.ok);
      const lps = rs.map((r) => r.linesPerSec);
      console.log(`| ${kind} | ${batch} | ${rs.length ? `${k(median(lps))} [${k(Math.min(...lps))}-${k(Math.max(...lps))}]` : '-'} (${rs.length}/${RUNS}) | ${rs.length ? median(rs.map((r) => r.usPerLine)).toFixed(2) : '-'} |`);
    }
    if (kinds.length === 2) {
      const a = results.get(`write ${batch}`).filter((r) => r.ok);
      const b = results.get(`spreadlogd ${batch}`).filter((r) => r.ok);
      if (a.length && b.length) console.log(`|   write / spreadlogd | ${batch} | x${(median(a.map((r) => r.linesPerSec)) / median(b.map((r) => r.linesPerSec))).toFixed(2)} | x${(median(a.map((r) => r.usPerLine)) / median(b.map((r) => r.usPerLine))).toFixed(2)} |`);
    }
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
