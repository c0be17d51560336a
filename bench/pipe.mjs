#!/usr/bin/env node
/**
 * Pipe-mode benchmark (issues 3 and 7), run on demand, never in CI:
 *
 *   npm run bench:pipe                        # builds, then runs every case
 *   N=200000 RUNS=5 CASES=line,ack node bench/pipe.mjs
 *   LINES_FILE=lines.txt node bench/pipe.mjs  # e.g. ../shared/baseline/gen-lines.py 200000 > lines.txt
 *   RATE=100000 CASES=line,ack node bench/pipe.mjs  # fed at a steady rate (bench/pace.mjs), not poured
 *   WARMUP=60000 node bench/pipe.mjs          # steady state: CPU counted once the hot path is compiled
 *
 * Every process is the product: `spread-pipe` (pipe mode, the publisher),
 * `spread-pipe --daemon` (the built-in daemon, fresh per run), and
 * `spread-pipe tail` writing to a file (the subscriber). The bench process
 * only watches: `cat` feeds stdin through a FIFO and tail receives.
 *
 * Throughput cases (one row each; runs interleaved case by case so that
 * ratios between rows are paired on this noisy machine):
 *   line       1 line per message (default options); output compared byte for byte
 *   batch      --batch
 *   ack        --ack (the daemon's copy is the acknowledgement)
 *   ack-spool  --ack --spool DIR (a fresh spool directory per run)
 *   ext        EXT_PUB, an external publisher measured the same way, e.g. the C
 *              libspread publisher of ../shared/baseline (built outside the project):
 *                EXT_PUB='/path/sp-linepub -s {spec} -g {group} -P {host}' \
 *                EXT_ENV='LD_LIBRARY_PATH=/path/spread/lib' npm run bench:pipe
 *              {spec} {group} {host} are filled in; it must send `{host} LINE\n`.
 * Overload cases (10x the queue's capacity poured in):
 *   hung       the daemon is SIGSTOPped throughout
 *   slow       the daemon runs 10 ms in every 100 (SIGSTOP/SIGCONT)
 *
 * DAEMON=PORT@HOST uses a daemon already running (e.g. a real Spread) instead
 * of a fresh built-in one; its CPU is then not measured. DAEMON_CMD='...'
 * starts that daemon once for the whole bench (its CPU is measured, and it is
 * stopped at the end), e.g.
 *   DAEMON=4953@127.0.0.1 DAEMON_CMD='/work/ext/spread-5.0.1/inst/sbin/spread -n localhost -c /tmp/s.conf' \
 *     BUILTIN=1 BASE=/tmp/base-main npm run bench:pipe
 * SINK='/path/sp-sink' counts at that subscriber instead of `spread-pipe tail`
 * (a Spread client built outside the project, e.g. ../shared/baseline's
 * sp-sink, run as `SINK -s SPEC -g GROUP -l LINES -r READYFILE -T 60`): on a
 * loaded machine a real daemon cuts off a subscriber that falls behind, and
 * a C subscriber keeps up where tail may not (SINK='nice -n -10 /path/sp-sink'
 * too). "exact" is then its line and byte count, the end time its last message.
 * BUILTIN=1 adds the built-in daemon's rows to a DAEMON run, interleaved run
 * by run, so that both daemons are compared side by side in one run.
 * BASE=DIR adds rows for another built tree (e.g. a worktree of main, built),
 * interleaved the same way; every "x line" ratio is against the plain row
 * of the tree being benchmarked (not BASE's) on the same daemon in the same
 * round, so "base: spread-pipe" x line is base / this tree.
 *
 * Publisher CPU is /proc/PID/stat from after start-up (a warm-up line, or WARMUP lines, has
 * reached the subscriber) to the last line at the subscriber, so it is the
 * cost per line; start-up CPU is printed on its own. These rows give pipe
 * mode a queue that holds the whole input (cat pours faster than any daemon
 * takes; a libspread publisher blocks instead of queueing), so peak RSS there
 * includes the backlog; the overload rows use the default, bounded queue. writes/line is
 * /proc/PID/io syscw (write/writev; sendto/sendmsg are not counted there, so
 * a libspread publisher shows 0: strace puts it at 2 sendto per line).
 * Peak RSS is VmHWM, read while the process lives.
 */
import { spawn, execFileSync } from 'node:child_process';
import { cpu, procRead, sleep, startNode, track, waitUntil } from './proc.mjs';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'dist', 'main.js');
const N = Number(process.env.N ?? 200_000);
const RUNS = Number(process.env.RUNS ?? 3);
const EXT_PUB = process.env.EXT_PUB;
/**
 * WARMUP=lines: before the measured input, this many lines (the input's first ones) go through the
 * publisher, and the bench waits for them at the subscriber and half a second more. The optimising
 * compiler then has the hot path compiled before CPU is counted: otherwise its work, a fixed
 * 0.2-0.35 CPU-s per process here, is counted as cost per line (about 1 us/line at N=300000).
 */
const WARMUP = Number(process.env.WARMUP ?? 0);
/** RATE=lines/s: the throughput rows are fed at this steady rate (bench/pace.mjs) instead of poured by `cat`. */
const RATE = Number(process.env.RATE ?? 0);
const CASES = (process.env.CASES ?? `line,batch,ack,ack-spool${EXT_PUB ? ',ext' : ''},hung,slow`).split(',');
const GROUP = 'bench';
const HOST = 'web1';
const TAG = `${HOST} `;
/** Pipe mode's default --queue-lines; the overload cases pour in ten times this. */
const QUEUE_LINES = 100_000;
const OVERLOAD_FACTOR = 10;

const THROUGHPUT = {
  line: { args: [], what: 'spread-pipe' },
  batch: { args: ['--batch'], what: 'spread-pipe --batch' },
  ack: { args: ['--ack'], what: 'spread-pipe --ack' },
  'ack-spool': { args: ['--ack', '--spool', '{spool}'], what: 'spread-pipe --ack --spool DIR' },
  ext: { ext: true, what: 'EXT_PUB' },
};

/** Baseline (../shared/baseline/README.md: 2-core VM, real Spread 5.0.1, C publisher sp-linepub, medians of 5 runs of 200k lines). */
const BASELINE = [
  'baseline (../shared/baseline, C sp-linepub -> real Spread 5.0.1 -> sp-sink, 200k lines):',
  '  1 line/msg: 49.4k lines/s, publisher 0.20 CPU s/100k, 2 sendto/line, 2.0 MB;  -b 32: 498k lines/s, 0.01 CPU s/100k',
];

if (!fs.existsSync(CLI)) {
  console.error('build first: npm run build');
  process.exit(2);
}
for (const c of CASES) {
  if (!THROUGHPUT[c] && c !== 'hung' && c !== 'slow') {
    console.error(`unknown case ${c}`);
    process.exit(2);
  }
}
if (CASES.includes('ext') && !EXT_PUB) {
  console.error('case ext needs EXT_PUB');
  process.exit(2);
}

const TREES = [{ label: '', cli: CLI }];
if (process.env.BASE) {
  const cli = path.join(path.resolve(process.env.BASE), 'dist', 'main.js');
  if (!fs.existsSync(cli)) {
    console.error(`BASE: ${cli} is missing (build that tree first)`);
    process.exit(2);
  }
  TREES.push({ label: 'base: ', cli });
}
const TARGETS = process.env.DAEMON
  ? [{ label: `daemon ${process.env.DAEMON}`, spec: process.env.DAEMON }, ...(process.env.BUILTIN === '1' ? [{ label: 'built-in', builtin: true }] : [])]
  : [{ label: 'built-in', builtin: true }];
if (process.env.DAEMON_CMD && !process.env.DAEMON) {
  console.error('DAEMON_CMD needs DAEMON=PORT@HOST (where it listens)');
  process.exit(2);
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'spread-pipe-bench-'));
process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }));
process.on('SIGINT', () => process.exit(130));

function start(args, stdio, nodeFlags = [], cli = CLI) {
  return startNode(cli, args, stdio, nodeFlags);
}

function status(pid, key) {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(procRead(pid, 'status'));
  return m ? Number(m[1]) / 1024 : NaN;
}

function syscw(pid) {
  const m = /^syscw: (\d+)/m.exec(procRead(pid, 'io'));
  return m ? Number(m[1]) : NaN;
}

// ---- input ------------------------------------------------------------------

/** Deterministic Apache combined lines, ~240 bytes on average like the baseline's gen-lines.py. */
function generate(n) {
  let s = 1;
  const rnd = (k) => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0), (s >>> 8) % k);
  const pick = (a) => a[rnd(a.length)];
  const agents = [
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
    'Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0',
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1',
    'curl/8.4.0',
    'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
  ];
  const words = ['index', 'product', 'item', 'view', 'list', 'article', 'cart', 'search', 'feed', 'about'];
  const out = [];
  for (let i = 0; i < n; i++) {
    const ip = `${1 + rnd(223)}.${rnd(256)}.${rnd(256)}.${1 + rnd(254)}`;
    const p = `/${pick(['', 'shop/', 'blog/', 'api/v1/', 'static/'])}${pick(words)}/${pick(words)}${rnd(3) ? '' : `?id=${rnd(99999)}&page=${rnd(50)}`}`;
    const ref = rnd(7) ? `"https://www.example.com/${pick(words)}.html"` : '"-"';
    out.push(
      `${ip} - - [14/Nov/2023:22:${String(rnd(60)).padStart(2, '0')}:${String(rnd(60)).padStart(2, '0')} +0000] "GET ${p} HTTP/1.1" ${pick([200, 200, 200, 304, 404])} ${rnd(30000)} ${ref} "${pick(agents)}"\n`,
    );
  }
  return Buffer.from(out.join(''), 'latin1');
}

function loadInput() {
  if (process.env.LINES_FILE) {
    const data = fs.readFileSync(process.env.LINES_FILE);
    const n = data.reduce((k, b) => k + (b === 0x0a ? 1 : 0), 0);
    return { data, n };
  }
  return { data: generate(N), n: N };
}

function tagged(data) {
  const tag = Buffer.from(TAG);
  const parts = [];
  for (let i = 0; i < data.length; ) {
    const nl = data.indexOf(0x0a, i);
    parts.push(tag, data.subarray(i, nl + 1));
    i = nl + 1;
  }
  return Buffer.concat(parts);
}

// ---- processes ----------------------------------------------------------------

async function startDaemon(target) {
  if (!target.builtin) return { d: undefined, spec: target.spec, ext: target.proc };
  const d = start(['--daemon', '--name', 'localhost', '--no-unix', '--listen', '127.0.0.1:0'], ['ignore', 'ignore', 'pipe']);
  const port = await waitUntil(() => /listening on 127\.0\.0\.1:(\d+)/.exec(d.err)?.[1], 10_000, 'the daemon', d);
  return { d, spec: `${port}@127.0.0.1` };
}

async function stop(...procs) {
  for (const c of procs) if (c && c.exitCode === null && c.signalCode === null) (process.kill(c.pid, 'SIGCONT'), c.kill('SIGTERM'));
  await Promise.all(procs.map((c) => c?.exited));
}

async function startTail(spec, file) {
  const fd = fs.openSync(file, 'w');
  const t = start(['tail', '-g', GROUP, '-s', spec, '--membership'], ['ignore', fd, 'pipe']);
  fs.closeSync(fd);
  await waitUntil(() => fs.readFileSync(file, 'latin1').includes('# membership'), 10_000, 'tail to join', t);
  return { t, offset: fs.statSync(file).size };
}

/**
 * Start a publisher with stdin from a FIFO that the bench holds open, push
 * a warm-up line through, and return a `pour(files)` that lets `cat` feed it.
 */
async function startPublisher(spec, kase, arrived, extra, cli = CLI, warmLines = Buffer.alloc(0)) {
  const fifo = path.join(work, `in-${Date.now()}-${Math.random().toString(36).slice(2)}`);
  execFileSync('mkfifo', [fifo]);
  const wfd = fs.openSync(fifo, fs.constants.O_RDWR); // does not wait for a reader; keeps the FIFO open
  const rfd = fs.openSync(fifo, fs.constants.O_RDONLY);
  let p;
  if (kase.ext) {
    const fill = (s) => s.replaceAll('{spec}', spec).replaceAll('{group}', GROUP).replaceAll('{host}', HOST);
    const env = { ...process.env };
    for (const kv of (process.env.EXT_ENV ?? '').split(' ').filter(Boolean)) env[kv.slice(0, kv.indexOf('='))] = kv.slice(kv.indexOf('=') + 1);
    const [cmd, ...args] = fill(EXT_PUB).split(' ').filter(Boolean);
    p = track(spawn(cmd, args, { stdio: [rfd, 'ignore', 'pipe'], env }));
  } else {
    const spool = path.join(work, `spool-${Date.now()}-${Math.random().toString(36).slice(2)}`);
    const args = [...kase.args.map((a) => (a === '{spool}' ? spool : a)), ...(extra ?? [])];
    // PUB_NODE_FLAGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", to look inside the publisher.
    const flags = process.env.PUB_NODE_FLAGS ? process.env.PUB_NODE_FLAGS.split(' ') : [];
    p = start(['-g', GROUP, '-s', spec, '-h', HOST, ...args], [rfd, 'ignore', 'pipe'], flags, cli);
  }
  fs.closeSync(rfd);
  const warmIn = Buffer.concat([Buffer.from('warm-up\n'), warmLines]);
  for (let off = 0; off < warmIn.length; ) off += fs.writeSync(wfd, warmIn, off);
  await waitUntil(arrived, 60_000, 'the warm-up line(s)', p);
  // Compiles started by the warm-up run in the background: let them finish outside the measured window.
  if (warmLines.length) await sleep(500);
  const startupCpu = cpu(p.pid);
  return {
    p,
    startupCpu,
    pour(files, paced = true) {
      const c = RATE && paced
        ? track(spawn(process.execPath, [path.join(ROOT, 'bench', 'pace.mjs'), String(RATE), ...files], { stdio: ['ignore', wfd, 'inherit'] }))
        : track(spawn('cat', files, { stdio: ['ignore', wfd, 'inherit'] }));
      fs.closeSync(wfd); // cat is the only writer now: its exit is the publisher's EOF
      return c;
    },
  };
}

// ---- one run ------------------------------------------------------------------

/** SINK: a counting subscriber (sp-sink) instead of tail; resolves once it is joined. */
async function startSink(spec, lines) {
  const ready = path.join(work, `ready-${Date.now()}-${Math.random().toString(36).slice(2)}`);
  const [cmd, ...pre] = process.env.SINK.split(' ').filter(Boolean);
  const s = track(spawn(cmd, [...pre, '-s', spec, '-g', GROUP, '-l', String(lines), '-r', ready, '-T', '60'], { stdio: ['ignore', 'pipe', 'pipe'] }));
  s.out = '';
  s.stdout.on('data', (b) => (s.out += b));
  await waitUntil(() => fs.existsSync(ready), 10_000, 'the sink to join', s);
  return s;
}

async function throughputSink(kase, inputFile, expected, n, target, tree) {
  const { d: fresh, spec, ext } = await startDaemon(target);
  const d = fresh ?? ext;
  const sink = await startSink(spec, n + 1 + WARMUP);
  const roomy = ['--queue-lines', String(n + 1000), '--queue-bytes', String(2 * expected.length + (1 << 20)), '--drain-timeout', '300000'];
  // The warm-up line is counted at the sink's exit only: wait until the publisher is connected and has sent it.
  // (At 10k lines/s at least for the warm-up's lines: the sink reports only at its exit.)
  const { p, pour } = await startPublisher(spec, kase, async () => (await sleep(1500 + WARMUP / 10), true), kase.ext ? [] : roomy, tree.cli, WARM_IN);
  const startupCpu = cpu(p.pid);
  const cpu0 = { p: cpu(p.pid), d: d ? cpu(d.pid) : NaN, t: cpu(sink.pid) };
  const w0 = syscw(p.pid);
  const last = { cpu: cpu0.p, w: w0, hwm: status(p.pid, 'VmHWM'), t: cpu0.t, d: cpu0.d };
  const sample = () => {
    const c = cpu(p.pid);
    const w = syscw(p.pid);
    const hwm = status(p.pid, 'VmHWM');
    if (Number.isFinite(c) && Number.isFinite(w) && Number.isFinite(hwm)) Object.assign(last, { cpu: c, w, hwm });
    const t = cpu(sink.pid);
    if (Number.isFinite(t)) last.t = t;
    if (d) last.d = cpu(d.pid);
  };
  const t0 = Date.now() / 1000;
  pour([inputFile]);
  while (sink.exitCode === null && sink.signalCode === null) {
    sample();
    await sleep(5);
  }
  while (p.exitCode === null && p.signalCode === null && Date.now() / 1000 - t0 < 300) {
    sample();
    await sleep(2);
  }
  const r = Object.fromEntries([...sink.out.matchAll(/(\w+)=([\d.]+|\w+)/g)].map((m) => [m[1], m[2]]));
  await stop(fresh, p);
  const secs = Number(r.last) - t0;
  return {
    linesPerSec: n / secs,
    pubCpu: ((last.cpu - cpu0.p) * 1e5) / n,
    startupCpu,
    writesPerLine: (last.w - w0) / n,
    rssMB: last.hwm,
    dmnCpu: ((last.d - cpu0.d) * 1e5) / n,
    tailCpu: ((last.t - cpu0.t) * 1e5) / n,
    exact: r.status === 'done' && Number(r.lines) === n + 1 + WARMUP && Number(r.bytes) === WARM_OUT.length + expected.length,
    // Why not: the sink's own words (a real daemon cuts off a subscriber that falls behind: status=killed).
    sinkStatus: `${r.status ?? 'no result'} lines=${r.lines ?? '?'}`,
  };
}

async function throughput(name, inputFile, expected, n, target = TARGETS[0], tree = TREES[0]) {
  if (process.env.SINK) return throughputSink(THROUGHPUT[name], inputFile, expected, n, target, tree);
  const kase = THROUGHPUT[name];
  const { d: fresh, spec, ext } = await startDaemon(target);
  // A daemon started for the whole bench (DAEMON_CMD) is measured, not stopped.
  const d = fresh ?? ext;
  const out = path.join(work, `out-${name}`);
  const { t, offset } = await startTail(spec, out);
  const size = () => fs.statSync(out).size - offset;
  // A queue that holds the whole input: cat pours faster than any daemon takes, and a drop would spoil the
  // comparison (a libspread publisher blocks instead). The overload rows show the default, bounded queue.
  // Likewise a drain timeout long enough for a slow daemon to take the backlog after EOF.
  const roomy = ['--queue-lines', String(n + 1000), '--queue-bytes', String(2 * expected.length + (1 << 20)), '--drain-timeout', '300000'];
  const { p, pour, startupCpu } = await startPublisher(spec, kase, () => size() >= WARM_OUT.length, kase.ext ? [] : roomy, tree.cli, WARM_IN);
  const cpu0 = { p: cpu(p.pid), d: d ? cpu(d.pid) : NaN, t: cpu(t.pid) };
  const w0 = syscw(p.pid);
  // The publisher may exit (at EOF, everything sent) before the subscriber has it all: keep its last figures.
  const last = { cpu: cpu0.p, w: w0, hwm: status(p.pid, 'VmHWM') };
  const sample = () => {
    const c = cpu(p.pid);
    const w = syscw(p.pid);
    const hwm = status(p.pid, 'VmHWM');
    // A zombie still has a stat file but no memory: take all three together or none.
    if (Number.isFinite(c) && Number.isFinite(w) && Number.isFinite(hwm)) Object.assign(last, { cpu: c, w, hwm });
  };
  const t0 = process.hrtime.bigint();
  pour([inputFile]);
  let exitedAt = 0;
  await waitUntil(
    () => {
      sample();
      if (size() >= WARM_OUT.length + expected.length) return true;
      // Gone and nothing more arriving for 5 s: lines were lost; say why rather than wait out the timeout.
      if (p.exitCode !== null || p.signalCode !== null) {
        exitedAt ||= Date.now();
        if (Date.now() - exitedAt > 5000) throw new Error(`${kase.what}: ${size() - WARM_OUT.length} of ${expected.length} bytes arrived; its stderr: ${p.err.slice(-600)}`);
      }
      return false;
    },
    300_000,
    'all lines at the subscriber',
    p,
  );
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const dt = { d: d ? cpu(d.pid) - cpu0.d : NaN, t: cpu(t.pid) - cpu0.t };
  while (p.exitCode === null && p.signalCode === null) {
    sample();
    await sleep(2);
  }
  const got = fs.readFileSync(out).subarray(offset + WARM_OUT.length);
  await stop(t, fresh);
  return {
    linesPerSec: n / secs,
    pubCpu: ((last.cpu - cpu0.p) * 1e5) / n,
    startupCpu,
    writesPerLine: (last.w - w0) / n,
    rssMB: last.hwm,
    dmnCpu: (dt.d * 1e5) / n,
    tailCpu: (dt.t * 1e5) / n,
    exact: got.equals(expected),
  };
}

async function overload(kind, inputFile, n) {
  const { d, spec } = await startDaemon({ builtin: true });
  if (!d) throw new Error('the overload cases need the built-in daemon (unset DAEMON)');
  const out = path.join(work, `out-${kind}`);
  const { t, offset } = await startTail(spec, out);
  const { p, pour } = await startPublisher(spec, THROUGHPUT.line, () => fs.statSync(out).size > offset);
  const rssIdle = status(p.pid, 'VmRSS');
  let duty;
  process.kill(d.pid, 'SIGSTOP');
  if (kind === 'slow') {
    // Runs 10 ms in every 100: a daemon (and subscriber behind it) that takes a tenth of what comes.
    let tick = 0;
    duty = setInterval(() => {
      tick = (tick + 1) % 10;
      process.kill(d.pid, tick === 0 ? 'SIGCONT' : 'SIGSTOP');
    }, 10);
  }
  const cpu0 = cpu(p.pid);
  const t0 = Date.now();
  const reps = Math.ceil((OVERLOAD_FACTOR * QUEUE_LINES) / n);
  const cat = pour(Array(reps).fill(inputFile), false);
  const total = reps * n + 1;
  const samples = [];
  let read = 0;
  let hwm = NaN;
  let cpu1 = NaN;
  while (read < total) {
    process.kill(p.pid, 'SIGUSR1');
    await sleep(50);
    const all = [...p.err.matchAll(/counters: read=(\d+)/g)];
    if (all.length) read = Number(all.at(-1)[1]);
    samples.push({ read, rss: status(p.pid, 'VmRSS') });
    hwm = status(p.pid, 'VmHWM');
    cpu1 = cpu(p.pid);
    if (Date.now() - t0 > 120_000) throw new Error(`overload: read only ${read} of ${total}`);
  }
  const readSecs = (Date.now() - t0) / 1000;
  clearInterval(duty);
  process.kill(d.pid, 'SIGCONT');
  await cat.exited;
  p.kill('SIGTERM');
  await p.exited;
  await stop(t, d);
  const at = (x) => samples.find((s) => s.read >= x * QUEUE_LINES)?.rss ?? NaN;
  const exit = /exit: (.*)/.exec(p.err)?.[1] ?? '(no exit line)';
  const drops = /queue-full=(\d+)/.exec(exit)?.[1] ?? '?';
  return { total, linesPerSec: total / readSecs, cpuPer100k: ((cpu1 - cpu0) * 1e5) / total, rssIdle, rss1x: at(1), rss10x: samples.at(-1).rss, hwm, drops };
}

// ---- main -------------------------------------------------------------------

const median = (xs) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : NaN;
};
const fmt = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '-');
function cell(xs, d = 2, k = 1) {
  const f = xs.filter(Number.isFinite);
  if (!f.length) return '-';
  if (f.length === 1) return fmt(f[0] / k, d);
  return `${fmt(median(f) / k, d)} [${fmt(Math.min(...f) / k, d)}-${fmt(Math.max(...f) / k, d)}]`;
}
function table(head, rows) {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r) => `| ${r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join(' | ')} |`;
  console.log(line(head));
  console.log(`|${w.map((x, i) => (i === 0 ? `${'-'.repeat(x + 1)}-` : `${'-'.repeat(x + 1)}:`)).join('|')}|`);
  for (const r of rows) console.log(line(r));
}

const { data, n } = loadInput();
const inputFile = path.join(work, 'lines.txt');
fs.writeFileSync(inputFile, data);
const expected = tagged(data);
/** The warm-up's lines after the one `warm-up` line: the input's first WARMUP lines (more, the input again). */
const WARM_IN = (() => {
  if (!WARMUP) return Buffer.alloc(0);
  const reps = Math.ceil(WARMUP / n);
  const all = reps > 1 ? Buffer.concat(Array(reps).fill(data)) : data;
  let end = 0;
  for (let i = 0; i < WARMUP; i++) end = all.indexOf(0x0a, end) + 1;
  return all.subarray(0, end);
})();
/** What the subscriber gets of the warm-up. */
const WARM_OUT = Buffer.concat([Buffer.from(`${TAG}warm-up\n`), tagged(WARM_IN)]);
console.log(`spread-pipe pipe-mode bench: ${n} lines, ${(data.length / 1e6).toFixed(1)} MB, mean ${(data.length / n).toFixed(0)} B/line (+ "${TAG}" tag), ${RUNS} runs, node ${process.version}, ${os.cpus().length} CPUs`);
if (RATE) console.log(`input fed at ${RATE} lines/s (bench/pace.mjs), not poured: CPU per line while keeping up`);
if (WARMUP) console.log(`warm-up: ${WARMUP} lines through each publisher before the measured input (CPU counted after them)`);
console.log(`publisher -> ${TARGETS.map((t) => (t.builtin ? 'spread-pipe --daemon (fresh per run)' : `${t.label}${process.env.DAEMON_CMD ? ` (${process.env.DAEMON_CMD})` : ''}`)).join(' | ')} -> ${process.env.SINK ? 'SINK' : 'spread-pipe tail > file'}; median [min-max] of ${RUNS} runs; CPU in s per 100k lines`);
if (process.env.BASE) console.log(`base: = the tree in ${process.env.BASE}`);
if (process.env.SINK) console.log(`subscriber: ${process.env.SINK} (the "tail CPU" column is its CPU)`);
if (EXT_PUB) console.log(`ext = ${EXT_PUB}`);
console.log('');

if (process.env.DAEMON_CMD) {
  const [cmd, ...args] = process.env.DAEMON_CMD.split(' ').filter(Boolean);
  const proc = track(spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] }));
  TARGETS[0].proc = proc;
  // A real daemon serves clients a few seconds after it starts (PROTOCOL.md section 13).
  await sleep(Number(process.env.DAEMON_WAIT ?? 4000));
  // One that exited (its port taken, say) would leave the bench measuring whatever else listens there.
  if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`DAEMON_CMD exited: ${proc.err.slice(-500)}`);
}

const names = CASES.filter((c) => THROUGHPUT[c]);
const key = (t, tr, c) => `${t.label}|${tr.label}|${c}`;
const results = {};
for (const t of TARGETS) for (const tr of TREES) for (const c of names) results[key(t, tr, c)] = [];
for (let i = 0; i < RUNS; i++)
  for (const t of TARGETS) for (const tr of TREES) for (const c of names) results[key(t, tr, c)].push(await throughput(c, inputFile, expected, n, t, tr));

if (names.length) {
  const rows = [];
  for (const t of TARGETS)
    for (const tr of TREES)
      for (const c of names) {
        const rs = results[key(t, tr, c)];
        const col = (k) => rs.map((r) => r[k]);
        // Paired with the same round of this tree's plain row on the same daemon, so a busy moment on the machine hits both.
        const ref = names.includes('line') ? results[key(t, TREES[0], 'line')] : undefined;
        const ratio = (k) => (ref ? cell(rs.map((r, i) => r[k] / ref[i][k]), 2) : '-');
        rows.push([
          `${tr.label}${THROUGHPUT[c].what}`,
          t.label,
          rs.every((r) => r.exact) ? 'yes' : `NO ${rs.filter((r) => !r.exact).length}/${rs.length}${rs.find((r) => !r.exact)?.sinkStatus ? ` (${rs.find((r) => !r.exact).sinkStatus})` : ''}`,
          `${cell(col('linesPerSec'), 1, 1000)}k`,
          ratio('linesPerSec'),
          cell(col('pubCpu')),
          ratio('pubCpu'),
          cell(col('startupCpu')),
          cell(col('writesPerLine'), 4),
          cell(col('rssMB'), 1),
          cell(col('dmnCpu')),
          cell(col('tailCpu')),
        ]);
      }
  table(['case', 'daemon', 'exact', 'lines/s', 'x line', 'pub CPU/100k', 'x line', 'start-up CPU s', 'writes/line', 'pub peak RSS MB', 'dmn CPU/100k', 'tail CPU/100k'], rows);
  console.log('');
  for (const l of BASELINE) console.log(l);
  console.log('');
}

const overloads = CASES.filter((c) => c === 'hung' || c === 'slow');
if (overloads.length) {
  const ov = Object.fromEntries(overloads.map((c) => [c, []]));
  for (let i = 0; i < RUNS; i++) for (const c of overloads) ov[c].push(await overload(c, inputFile, n));
  const col = (c, k) => ov[c].map((r) => r[k]);
  const oneX = results[key(TARGETS[0], TREES[0], 'line')]?.map((r) => r.rssMB);
  console.log(
    `Overload: ${OVERLOAD_FACTOR}x the queue (--queue-lines ${QUEUE_LINES}) poured in = ${ov[overloads[0]][0].total} lines; hung = daemon SIGSTOPped, slow = daemon runs 10 ms in every 100`,
  );
  table(
    ['case', 'stdin lines/s', 'pub CPU/100k', 'RSS MB idle', 'RSS at 1x', 'RSS at 10x', '10x / 1x', 'peak RSS MB', 'peak / line case', 'dropped'],
    overloads.map((c) => [
      c,
      `${cell(col(c, 'linesPerSec'), 0, 1000)}k`,
      cell(col(c, 'cpuPer100k')),
      cell(col(c, 'rssIdle'), 1),
      cell(col(c, 'rss1x'), 1),
      cell(col(c, 'rss10x'), 1),
      cell(ov[c].map((r) => r.rss10x / r.rss1x)),
      cell(col(c, 'hwm'), 1),
      oneX ? cell(ov[c].map((r, i) => r.hwm / oneX[Math.min(i, oneX.length - 1)])) : '-',
      ov[c].map((r) => r.drops).join(','),
    ]),
  );
  console.log('RSS at 1x/10x: VmRSS once 1x/10x the queue capacity has been read; peak: VmHWM; peak / line case: against the line row above (1x load).');
}

// The daemon started for the whole bench (its stderr pipe would keep this process alive).
if (TARGETS[0].proc) await stop(TARGETS[0].proc);
