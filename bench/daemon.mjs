#!/usr/bin/env node
/**
 * Daemon benchmark (issue 4), run on demand, never in CI:
 *
 *   npm run bench:daemon                          # builds, then every case against the built-in daemon
 *   RUNS=5 LINES=400000 CASES=1x1,4x4 node bench/daemon.mjs
 *   DAEMON=4903@127.0.0.1 node bench/daemon.mjs   # the same clients against a daemon already running
 *   DAEMON=4903@127.0.0.1 DAEMON_CMD='...' COMPARE=1 node bench/daemon.mjs
 *       # DAEMON_CMD (a shell command, run in DAEMON_CWD) starts the external daemon afresh for
 *       # every run and is killed after it; COMPARE=1 interleaves the built-in daemon run by run
 *
 * Messages/s (one log line of ~240 bytes per message, Apache combined format
 * as ../shared/baseline/gen-lines.py makes them) from N publishers to M
 * subscribers through one daemon. Only the daemon is the product here; the
 * clients are separate Node processes using the project's SpreadClient
 * (dist/spread/client.js), light enough not to be the bottleneck (their busy
 * figures are printed to show it):
 *   - a publisher multicasts LINES/N messages RELIABLE to one group, in a loop
 *     that respects send()'s return value and 'drain'; each line starts with
 *     a 10-digit sequence number;
 *   - a subscriber joins the group, counts data messages and checks, per
 *     publisher, that the sequence numbers arrive 0, 1, 2, ... (none missing,
 *     none out of order, none twice).
 * A publisher stays at most WINDOW lines (default 32768, ~8 MB) ahead of the
 * slowest subscriber (counts relayed over IPC every 2048 messages), as a
 * --ack publisher would: without it, publishers faster than the subscribers
 * fill the daemon's per-session buffer (64 MiB) and the subscribers are cut
 * off, which measures the subscribers and the buffer rather than the daemon.
 * Time runs from "go" (all clients connected and joined) to the last
 * subscriber's last message. lines/s = lines published per second, each
 * delivered to all M subscribers (deliveries/s = lines/s x M).
 *
 * Daemon CPU (utime+stime from /proc/PID/stat over that window) is given per
 * 100k deliveries; peak RSS is VmHWM from /proc/PID/status, so per run only
 * when the daemon is started per run (built-in, or DAEMON_CMD). The built-in
 * daemon's figure is Node's ~58 MB at rest plus what it holds for
 * subscribers, up to the window's worth (N x WINDOW lines); real Spread
 * holds at most 1000 messages per session and cuts off the rest. An external
 * daemon's pid is found from its listening TCP port (/proc/net/tcp), or
 * given as DAEMON_PID.
 *
 * Environment: LINES (total lines per case, default 300000), RUNS (3),
 * CASES (comma list of NxM, default 1x1,4x1,1x4,4x4), TIMEOUT_S (120),
 * WINDOW (32768; 0 = none),
 * DAEMON, DAEMON_CMD, DAEMON_CWD, DAEMON_PID, COMPARE; TRACE=MS prints the
 * daemon's, first publisher's and first subscriber's CPU share every MS ms.
 */
import { spawn, fork, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'dist', 'main.js');
const CLIENT = path.join(ROOT, 'dist', 'spread', 'client.js');
const CONSTANTS = path.join(ROOT, 'dist', 'spread', 'constants.js');
const SELF = fileURLToPath(import.meta.url);
const GROUP = 'bench';
const SEQ_DIGITS = 10;
/** A subscriber reports its counts per publisher every this many messages. */
const PROGRESS_EVERY = 2048;
/** Lines a publisher may be ahead of the slowest subscriber; 0: no limit. */
const WINDOW = Number(process.env.WINDOW ?? 32768);

/** ../shared/baseline/README.md: real Spread 5.0.1, sp-linepub -> spread -> sp-sink, 1 line/msg, 200k lines, 5 runs. */
const BASELINE = { linesPerSec: 49_400, cpuPer100k: 1.97, rssMB: 3.4 };


// ---------------------------------------------------------------------------
// Lines: deterministic Apache "combined" lines, ~242 bytes on average, in the
// manner of gen-lines.py (same fields and weights, a small seeded PRNG).

function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const AGENTS = [
  ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36', 22],
  ['Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15', 12],
  ['Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0', 8],
  ['Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1', 12],
  ['Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.6045.163 Mobile Safari/537.36', 10],
  ['Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)', 5],
  ['Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)', 3],
  ['curl/8.4.0', 4],
  ['Wget/1.21.4', 2],
  ['python-requests/2.31.0', 3],
  ['Go-http-client/1.1', 2],
  ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36 Edg/119.0.2151.97', 6],
  ['Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/119.0.6045.169 Mobile/15E148 Safari/604.1', 3],
  ['Apache-HttpClient/4.5.14 (Java/17.0.9)', 2],
  ['Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0', 6],
];
const SECTIONS = ['', 'shop', 'blog', 'api/v1', 'api/v2', 'static', 'images', 'docs', 'account', 'search', 'catalog/electronics', 'catalog/books', 'news/2024', 'help'];
const WORDS = ['index', 'product', 'item', 'view', 'list', 'detail', 'article', 'cart', 'checkout', 'login', 'logout', 'profile', 'settings', 'orders', 'search', 'category', 'tag', 'archive', 'feed', 'sitemap', 'about', 'contact'];
const EXTS = ['', '', '', '.html', '.php', '.css', '.js', '.png', '.jpg', '.json', '.svg', '.woff2'];
const QKEYS = ['id', 'page', 'q', 'sort', 'ref', 'utm_source', 'utm_medium', 'lang', 'session', 'limit'];
const QVALS = ['1', '2', 'desc', 'asc', 'google', 'newsletter', 'en', 'de', 'fr', 'cpc', 'email', 'summer-sale', 'a1b2c3d4', '50', 'spread+logging', 'apache+httpd'];
const REFHOSTS = ['https://www.google.com/', 'https://www.bing.com/search?q=spread+toolkit', 'https://example.com/', 'https://www.example.com/shop/index.html', 'https://news.ycombinator.com/item?id=38412345', 'https://t.co/AbCdEf123', 'https://duckduckgo.com/'];
const USERS = ['alice', 'bob', 'carol', 'dave', 'eve-admin', 'mallory', 'trent'];
const STATUS = [200, 200, 200, 200, 200, 200, 304, 301, 302, 404, 404, 403, 500, 206, 201];
const METHODS = [['GET', 85], ['POST', 9], ['HEAD', 3], ['PUT', 2], ['DELETE', 1]];
const PROTOS = [['HTTP/1.1', 80], ['HTTP/1.0', 5], ['HTTP/2.0', 15]];

/** `count` lines, each as a Buffer with SEQ_DIGITS bytes in front for the sequence number and a space. */
function makeLines(count, seed) {
  const r = rng(seed);
  const int = (lo, hi) => lo + Math.floor(r() * (hi - lo + 1));
  const pick = (a) => a[Math.floor(r() * a.length)];
  const weighted = (a) => {
    let x = r() * a.reduce((s, [, w]) => s + w, 0);
    for (const [v, w] of a) if ((x -= w) < 0) return v;
    return a[0][0];
  };
  const ip = () => `${int(1, 223)}.${int(0, 255)}.${int(0, 255)}.${int(1, 254)}`;
  const pool = Array.from({ length: 2000 }, ip);
  let t = 1_700_000_000;
  const out = [];
  for (let i = 0; i < count; i++) {
    t += pick([0, 0, 0, 1]);
    const d = new Date(t * 1000);
    const ts = `${String(d.getUTCDate()).padStart(2, '0')}/${d.toUTCString().slice(8, 11)}/${d.getUTCFullYear()}:${d.toISOString().slice(11, 19)} +0000`;
    const client = r() < 0.7 ? pick(pool) : ip();
    const user = r() < 0.05 ? pick(USERS) : '-';
    const method = weighted(METHODS);
    const sec = pick(SECTIONS);
    let p = '/' + (sec ? sec + '/' : '') + Array.from({ length: int(1, 3) }, () => pick(WORDS)).join('/');
    if (r() < 0.4) p += (p.endsWith('/') ? '' : '/') + int(1, 999999);
    p += pick(EXTS);
    if (r() < 0.35) p += '?' + Array.from({ length: int(1, 4) }, () => `${pick(QKEYS)}=${pick(QVALS)}`).join('&');
    const status = pick(STATUS);
    const size = status === 304 || method === 'HEAD' ? '-' : String(Math.floor(-Math.log(1 - r()) * 8000) + 20);
    const ref = r() < 0.15 ? '-' : pick([...REFHOSTS, 'https://www.example.com' + p.split('?')[0]]);
    const line = `${client} - ${user} [${ts}] "${method} ${p} ${weighted(PROTOS)}" ${status} ${size} "${ref}" "${weighted(AGENTS)}"\n`;
    out.push(Buffer.from(' '.repeat(SEQ_DIGITS + 1) + line, 'latin1'));
  }
  return out;
}

function writeSeq(buf, seq) {
  for (let i = SEQ_DIGITS - 1; i >= 0; i--, seq = Math.floor(seq / 10)) buf[i] = 0x30 + (seq % 10);
}

function readSeq(buf) {
  let v = 0;
  for (let i = 0; i < SEQ_DIGITS; i++) v = v * 10 + (buf[i] - 0x30);
  return v;
}

// ---------------------------------------------------------------------------
// Clients: child processes talking to the parent over IPC.

function cpuTicksSelf() {
  return procTicks(process.pid);
}

async function connect(daemon, membership) {
  const { SpreadClient } = await import(CLIENT);
  return SpreadClient.connect({ daemon, membership, connectTimeout: 10_000 });
}

async function publisher() {
  const [daemon, countArg, seedArg, windowArg] = process.argv.slice(3);
  const count = Number(countArg);
  const window = Number(windowArg) || Infinity;
  const { prepareSend } = await import(CLIENT);
  const { RELIABLE_MESS } = await import(CONSTANTS);
  const lines = makeLines(4096, Number(seedArg));
  const client = await connect(daemon, false);
  client.on('close', (err) => {
    if (err) process.send({ type: 'error', message: err.message });
  });
  const prep = prepareSend(GROUP, { service: RELIABLE_MESS });
  process.send({ type: 'ready', name: client.privateGroup, bytes: lines.reduce((s, b) => s + b.length, 0) / lines.length });
  let t0 = 0;
  let seq = 0;
  /** Lines every subscriber has received (relayed by the parent). */
  let acked = 0;
  let waitingAck = false;
  const pump = () => {
    while (seq < count) {
      if (seq - acked >= window) return void (waitingAck = true);
      const buf = lines[seq & 4095];
      writeSeq(buf, seq++);
      // send() copies the bytes into its write buffer: the line buffer can be reused at once.
      if (!client.send(prep, buf)) return void client.once('drain', pump);
    }
    client.flush();
    process.send({ type: 'sent', cpuTicks: cpuTicksSelf() - t0 });
  };
  process.on('message', (m) => {
    if (m.type === 'go') {
      t0 = cpuTicksSelf();
      pump();
    } else if (m.type === 'ack') {
      acked = Math.max(acked, m.n);
      if (waitingAck && seq - acked < window) {
        waitingAck = false;
        pump();
      }
    }
  });
}

async function subscriber() {
  const [daemon, publishersArg, countArg] = process.argv.slice(3);
  const expected = Number(publishersArg) * Number(countArg);
  const client = await connect(daemon, true);
  const next = new Map();
  let received = 0;
  let bad = 0;
  let t0 = 0;
  let firstBad = '';
  client.on('close', (err) => process.send({ type: 'error', message: `subscriber closed: ${err?.message ?? 'by the daemon'} after ${received} messages (${bad} out of sequence${firstBad ? `, first: ${firstBad}` : ''})` }));
  client.on('message', (ev) => {
    if (ev.kind === 'membership') {
      if (ev.info.changedMember === client.privateGroup && ev.info.cause === 'join') process.send({ type: 'ready', name: client.privateGroup });
      return;
    }
    if (ev.kind !== 'data') return;
    const f = ev.frame;
    const seq = readSeq(f.data);
    const want = next.get(f.sender) ?? 0;
    if (seq !== want) {
      bad++;
      firstBad ||= `${f.sender}: got ${seq}, expected ${want}`;
    }
    next.set(f.sender, seq + 1);
    if (++received % PROGRESS_EVERY === 0) process.send({ type: 'progress', counts: Object.fromEntries(next) });
    if (received === expected) {
      let missing = 0;
      for (const n of next.values()) missing += Number(countArg) - n;
      process.send({ type: 'done', received, bad, missing, firstBad, senders: next.size, cpuTicks: cpuTicksSelf() - t0 });
    }
  });
  process.on('message', (m) => {
    if (m.type === 'go') t0 = cpuTicksSelf();
  });
  client.join(GROUP);
}

// ---------------------------------------------------------------------------
// Parent.

const TICK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

function procTicks(pid) {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime
}

function vmHWM(pid) {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** The pid of the process listening on 127.0.0.1/0.0.0.0 TCP `port`, or undefined. */
function pidListeningOn(port) {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const inodes = new Set();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const row of text.split('\n').slice(1)) {
      const c = row.trim().split(/\s+/);
      if (c.length > 9 && c[1].endsWith(`:${hex}`) && c[3] === '0A') inodes.add(`socket:[${c[9]}]`);
    }
  }
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let fds = [];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (inodes.has(fs.readlinkSync(`/proc/${pid}/fd/${fd}`))) return Number(pid);
      } catch {
        // Closed meanwhile.
      }
    }
  }
  return undefined;
}

const children = new Set();
function track(child) {
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}
function killAll() {
  for (const c of children) c.kill('SIGKILL');
}
process.on('exit', killAll);
process.on('SIGINT', () => process.exit(130));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function waitExit(child, ms) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      resolve();
    }, ms);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

/** The built-in daemon, fresh: resolves once it printed its port. */
function startBuiltin() {
  const proc = track(spawn(process.execPath, [CLI, '--daemon', '--listen', '127.0.0.1:0', '--no-unix', '--name', 'bench'], { stdio: ['ignore', 'ignore', 'pipe'] }));
  let err = '';
  return new Promise((resolve, reject) => {
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (d) => {
      if (err.length < 65536) err += d;
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(err);
      if (m && !proc.port) {
        proc.port = Number(m[1]);
        resolve({ spec: `${proc.port}@127.0.0.1`, pid: proc.pid, stop: () => stopProc(proc, 'SIGTERM'), log: () => err });
      }
    });
    proc.once('exit', (code) => reject(new Error(`built-in daemon exited (${code}): ${err.trim().split('\n').slice(-3).join(' | ')}`)));
  });
}

async function stopProc(proc, sig) {
  proc.kill(sig);
  await waitExit(proc, 5000);
}

/** An external daemon: already running (DAEMON), or started per run with DAEMON_CMD. */
async function startExternal() {
  const spec = process.env.DAEMON;
  const port = Number(/^(\d+)/.exec(spec)?.[1]);
  let proc;
  if (process.env.DAEMON_CMD) {
    // Another daemon on the port would answer for ours, which then exits unseen.
    const other = pidListeningOn(port);
    if (other) throw new Error(`port ${port} is already served by pid ${other}: stop it, or use another port`);
    proc = track(spawn('sh', ['-c', `exec ${process.env.DAEMON_CMD}`], { cwd: process.env.DAEMON_CWD ?? process.cwd(), stdio: 'ignore' }));
    // A daemon forming its (one-member) ring answers only after a while: try until a session opens.
    const { SpreadClient } = await import(CLIENT);
    const until = Date.now() + 30_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`DAEMON_CMD exited with ${proc.exitCode}`);
      try {
        const c = await SpreadClient.connect({ daemon: spec, membership: false, connectTimeout: 2000 });
        await c.disconnect();
        break;
      } catch (e) {
        if (Date.now() > until) throw new Error(`external daemon at ${spec} not answering: ${e.message}`);
        await sleep(200);
      }
    }
  }
  const pid = Number(process.env.DAEMON_PID) || proc?.pid || pidListeningOn(port);
  return { spec, pid, stop: async () => proc && stopProc(proc, 'SIGTERM'), log: () => '', external: true, fresh: Boolean(proc) };
}

function forkClient(args) {
  const child = track(fork(SELF, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  const inbox = [];
  let waiter;
  child.on('message', (m) => {
    if (m.type === 'progress') return child.onProgress?.(m);
    inbox.push(m);
    waiter?.();
  });
  child.on('exit', (code, sig) => {
    inbox.push({ type: 'error', message: `client exited (${code ?? sig})` });
    waiter?.();
  });
  /** Next message of `type`; an 'error' message or the deadline fails it. */
  child.expect = async (type, deadline) => {
    for (;;) {
      const i = inbox.findIndex((m) => m.type === type || m.type === 'error');
      if (i >= 0) {
        const m = inbox.splice(i, 1)[0];
        if (m.type === 'error') throw new Error(m.message);
        return m;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for "${type}"`);
      await new Promise((r) => {
        const t = setTimeout(r, left);
        waiter = () => {
          clearTimeout(t);
          r();
        };
      });
      waiter = undefined;
    }
  };
  return child;
}

async function runOnce(kind, pubs, subs, lines) {
  const perPub = Math.floor(lines / pubs);
  const d = kind === 'built-in' ? await startBuiltin() : await startExternal();
  const deadline = Date.now() + Number(process.env.TIMEOUT_S ?? 120) * 1000;
  const clients = [];
  try {
    const subscribers = Array.from({ length: subs }, () => forkClient(['--subscriber', d.spec, String(pubs), String(perPub)]));
    clients.push(...subscribers);
    for (const s of subscribers) await s.expect('ready', deadline);
    const publishers = Array.from({ length: pubs }, (_, i) => forkClient(['--publisher', d.spec, String(perPub), String(i + 1), String(WINDOW)]));
    clients.push(...publishers);
    let lineBytes = 0;
    for (const p of publishers) {
      const ready = await p.expect('ready', deadline);
      lineBytes += ready.bytes / pubs;
      p.name = ready.name;
      p.acked = 0;
    }
    // The window: each publisher learns how far the slowest subscriber has got with its lines.
    const counts = subscribers.map(() => ({}));
    subscribers.forEach((sub, k) => {
      sub.onProgress = (m) => {
        counts[k] = m.counts;
        for (const p of publishers) {
          const n = Math.min(...counts.map((c) => c[p.name] ?? 0));
          if (n > p.acked) p.send({ type: 'ack', n: (p.acked = n) });
        }
      };
    });
    const cpu0 = d.pid ? procTicks(d.pid) : NaN;
    const t0 = process.hrtime.bigint();
    const trace = process.env.TRACE ? traceCpu({ daemon: d.pid, pub: publishers[0].pid, sub: subscribers[0].pid }, Number(process.env.TRACE)) : undefined;
    for (const c of clients) c.send({ type: 'go' });
    const done = [];
    try {
      for (const s of subscribers) done.push(await s.expect('done', deadline));
    } finally {
      clearInterval(trace);
    }
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = d.pid ? (procTicks(d.pid) - cpu0) / TICK : NaN;
    const sent = [];
    for (const p of publishers) sent.push(await p.expect('sent', deadline));
    const rss = d.pid ? vmHWM(d.pid) : NaN;
    const errors = done.filter((x) => x.bad || x.missing || x.senders !== pubs).map((x) => `${x.bad} out of sequence, ${x.missing} missing, ${x.senders} senders (${x.firstBad})`);
    if (errors.length) throw new Error(`loss or disorder: ${errors.join('; ')}`);
    const deliveries = perPub * pubs * subs;
    const busy = (ticks) => ticks / TICK / secs;
    return {
      linesPerSec: (perPub * pubs) / secs,
      deliveriesPerSec: deliveries / secs,
      cpuPer100k: (cpu / deliveries) * 1e5,
      daemonBusy: cpu / secs,
      rssMB: d.external && !d.fresh ? NaN : rss,
      rssLifetimeMB: rss,
      pubBusy: Math.max(...sent.map((x) => busy(x.cpuTicks))),
      subBusy: Math.max(...done.map((x) => busy(x.cpuTicks))),
      lineBytes,
      secs,
    };
  } catch (e) {
    const log = d.log().trim().split('\n').slice(-5).join('\n  ');
    throw new Error(`${kind} ${pubs}x${subs}: ${e.message}${log ? `\n  daemon said:\n  ${log}` : ''}`);
  } finally {
    for (const c of clients) c.kill('SIGKILL');
    await Promise.all(clients.map((c) => waitExit(c, 2000)));
    await d.stop();
  }
}

/** TRACE=MS: CPU share of the daemon and the first publisher and subscriber every MS ms, to see who waits for whom. */
function traceCpu(pids, ms) {
  let last = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, procTicks(pid)]));
  let n = 0;
  return setInterval(() => {
    const now = {};
    const parts = [];
    for (const [k, pid] of Object.entries(pids)) {
      try {
        now[k] = procTicks(pid);
      } catch {
        now[k] = last[k];
      }
      parts.push(`${k} ${((now[k] - last[k]) / TICK / (ms / 1000)).toFixed(2)}`);
    }
    const rss = (() => {
      try {
        return /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pids.daemon}/status`, 'utf8'))[1] / 1024;
      } catch {
        return NaN;
      }
    })();
    console.log(`    t=${(++n * ms) / 1000}s ${parts.join(' ')} daemon-rss ${rss.toFixed(0)}MB`);
    last = now;
  }, ms);
}

function median(xs) {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function fmtRate(v) {
  if (Number.isNaN(v)) return '-';
  return v >= 1e6 ? `${(v / 1e6).toFixed(2)}M` : `${(v / 1e3).toFixed(1)}k`;
}

function summary(xs, fmt) {
  const v = xs.filter((x) => !Number.isNaN(x));
  if (!v.length) return '-';
  return `${fmt(median(v))} [${fmt(Math.min(...v))}-${fmt(Math.max(...v))}]`;
}

async function main() {
  for (const f of [CLI, CLIENT]) {
    if (!fs.existsSync(f)) {
      console.error(`build first (npm run build): ${f} missing`);
      process.exit(2);
    }
  }
  const LINES = Number(process.env.LINES ?? 300_000);
  const RUNS = Number(process.env.RUNS ?? 3);
  const CASES = (process.env.CASES ?? '1x1,4x1,1x4,4x4').split(',').map((c) => {
    const m = /^(\d+)x(\d+)$/.exec(c.trim());
    if (!m) throw new Error(`bad case "${c}": expected NxM (publishers x subscribers)`);
    return [Number(m[1]), Number(m[2])];
  });
  const kinds = process.env.DAEMON ? (process.env.COMPARE ? ['built-in', 'external'] : ['external']) : ['built-in'];
  const label = (k) => (k === 'external' ? `external ${process.env.DAEMON}` : 'built-in');
  console.log(`daemon bench: ${LINES} lines per case, ${RUNS} runs, cases ${CASES.map((c) => c.join('->')).join(' ')}, daemons: ${kinds.map(label).join(', ')}`);

  const results = new Map();
  const failures = new Map();
  // Interleaved run by run, so that a noisy minute hits every case and daemon alike.
  for (let run = 1; run <= RUNS; run++) {
    for (const [p, s] of CASES) {
      for (const kind of kinds) {
        const key = `${kind} ${p}x${s}`;
        if (!results.has(key)) results.set(key, []);
        let r;
        try {
          r = await runOnce(kind, p, s, LINES);
        } catch (e) {
          // E.g. real Spread cutting off a subscriber 1000 messages behind: a result too, and the other runs go on.
          failures.set(key, (failures.get(key) ?? 0) + 1);
          console.log(`  run ${run} ${label(kind).padEnd(8)} ${p}->${s}: FAILED: ${e.message}`);
          continue;
        }
        results.get(key).push(r);
        console.log(`  run ${run} ${label(kind).padEnd(8)} ${p}->${s}: ${fmtRate(r.linesPerSec)} lines/s, daemon ${r.cpuPer100k.toFixed(2)} cpu-s/100k deliveries, busy ${r.daemonBusy.toFixed(2)}, VmHWM ${r.rssLifetimeMB.toFixed(1)} MB (pub ${r.pubBusy.toFixed(2)}, sub ${r.subBusy.toFixed(2)} busy)`);
      }
    }
  }

  const lineBytes = median([...results.values()].flat().map((r) => r.lineBytes));
  console.log(`\nmedian [min-max] of ${RUNS} runs; ${LINES} lines of ~${Math.round(lineBytes - SEQ_DIGITS - 1)} bytes (+${SEQ_DIGITS + 1}-byte sequence number) per case, 1 line per message, RELIABLE`);
  console.log('busy = CPU seconds / elapsed seconds (1.00 = one core); pub/sub busy = the busiest client process\n');
  const head = ['daemon', 'case', 'lines/s', 'deliveries/s', 'dmn cpu-s/100k deliv', 'dmn busy', 'dmn VmHWM MB', 'pub/sub busy', 'failed'];
  const rows = [];
  for (const [key, rs] of results) {
    const [kind, c] = key.split(' ');
    rows.push([
      label(kind),
      c.replace('x', '->'),
      summary(rs.map((r) => r.linesPerSec), fmtRate),
      fmtRate(median(rs.map((r) => r.deliveriesPerSec))),
      summary(rs.map((r) => r.cpuPer100k), (v) => v.toFixed(2)),
      median(rs.map((r) => r.daemonBusy)).toFixed(2),
      summary(rs.map((r) => r.rssMB), (v) => v.toFixed(1)),
      `${median(rs.map((r) => r.pubBusy)).toFixed(2)}/${median(rs.map((r) => r.subBusy)).toFixed(2)}`,
      `${failures.get(key) ?? 0}/${RUNS}`,
    ]);
  }
  printTable(head, rows);
  if (kinds.length === 2) {
    console.log('\nbuilt-in / external, lines/s (ratio of medians):');
    for (const [p, s] of CASES) {
      const b = median(results.get(`built-in ${p}x${s}`).map((r) => r.linesPerSec));
      const x = median(results.get(`external ${p}x${s}`).map((r) => r.linesPerSec));
      console.log(`  ${p}->${s}: ${(b / x).toFixed(2)}x`);
    }
  }
  const one = results.get(`${kinds[0]} 1x1`);
  if (one) {
    const r = median(one.map((x) => x.linesPerSec));
    console.log(`\nbaseline (../shared/baseline, real Spread 5.0.1, C clients, 1->1): ${fmtRate(BASELINE.linesPerSec)} lines/s, daemon ${BASELINE.cpuPer100k} cpu-s/100k, ${BASELINE.rssMB} MB; ${label(kinds[0])} 1->1 here: ${(r / BASELINE.linesPerSec).toFixed(2)}x`);
  }
}

function printTable(head, rows) {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells) => '| ' + cells.map((c, i) => c.padEnd(w[i])).join(' | ') + ' |';
  console.log(line(head));
  console.log('|' + w.map((n) => '-'.repeat(n + 2)).join('|') + '|');
  for (const r of rows) console.log(line(r));
}

// Last: the parent's module-level state above is initialized by now.
const role = process.argv[2];
if (role === '--publisher') await publisher();
else if (role === '--subscriber') await subscriber();
else await main();
