#!/usr/bin/env node
/**
 * npm run bench:top — figures for issue #14 (printed, not asserted):
 *   1. top's counting (parse + aggregate) in lines per CPU-second, one core,
 *      combined lines of ~242 B (the baseline's gen-lines.py, or the same
 *      shape generated here), one line per message and 8 KiB batches;
 *   2. end to end: pipe mode -> built-in daemon -> `top --json --interval 1000
 *      --exit-after N`, top's CPU time per line and peak RSS (/usr/bin/time);
 *   3. memory after 1M distinct URLs and 1M distinct clients, and after 3M;
 *   4. the cost of --metrics on pipe mode: publisher CPU per line with and
 *      without it, runs alternated side by side.
 *   LINES=200000 ROUNDS=3 node bench/top.mjs
 *   BASE=/tmp/base-top ...   parts 1 and 2 also for that (built) checkout,
 *                            rounds alternated, with the ratio: a noisy
 *                            machine slows both alike
 *   PARTS=12 ...             only the parts named (default 1234)
 *   TOP_FLAGS='--cpu-prof --cpu-prof-dir=DIR' ...  node flags for top (part 2)
 *   RATE=200000 ...          part 2 fed at that rate (bench/pace.mjs): whether
 *                            top keeps up (its share of a core, how soon
 *                            after the last line it has counted it)
 *   WARM=50000 ...           part 2: top first counts this many lines (a
 *                            publisher of its own), left out of the figure
 *                            with start-up: a long-running top's steady
 *                            rate, JIT compilation and table growth done
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpu as procCpu, waitUntil } from './proc.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'dist', 'main.js');
const N = Number(process.env.LINES ?? 200_000);
const WARM = Number(process.env.WARM ?? 0);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const GEN = process.env.GEN_LINES ?? '/work/shared/baseline/gen-lines.py';
const BASE = process.env.BASE ? path.resolve(process.env.BASE) : undefined;
const BUILDS = BASE ? [ROOT, BASE] : [ROOT];
const PARTS = process.env.PARTS ?? '1234';
/** RATE=lines/s: part 2's input fed at this steady rate (bench/pace.mjs) instead of poured. */
const RATE = Number(process.env.RATE ?? 0);
// Node flags for top's process in part 2, e.g. TOP_FLAGS='--cpu-prof --cpu-prof-dir=/tmp/prof'.
const TOP_FLAGS = (process.env.TOP_FLAGS ?? '').split(' ').filter(Boolean);
const label = (root) => (BASE ? (root === BASE ? ' [base]' : ' [this]') : '');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'spread-pipe-bench-top-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

function lines(n) {
  if (fs.existsSync(GEN)) return execFileSync('python3', [GEN, String(n), '1'], { maxBuffer: 1 << 30 });
  // The same shape without the baseline: ~242 B combined lines, 70% of clients from a pool.
  let seed = 1;
  const r = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const agent = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36';
  const out = [];
  for (let i = 0; i < n; i++) {
    const ip = r() < 0.7 ? `10.0.${i % 8}.${i % 250}` : `${(r() * 223) | 0}.${(r() * 255) | 0}.${(r() * 255) | 0}.${(r() * 254) | 0}`;
    out.push(`${ip} - - [14/Nov/2023:22:13:20 +0000] "GET /shop/item/${(r() * 1e6) | 0}.html?id=${i % 50} HTTP/1.1" 200 ${(r() * 9000) | 0} "https://www.google.com/" "${agent}"\n`);
  }
  return Buffer.from(out.join(''));
}

const cpu = (f) => {
  const c0 = process.cpuUsage();
  f();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1e6;
};
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const k = (v) => `${Math.round(v / 1000)}k`;

console.log(`# bench:top  ${new Date().toISOString()}  node ${process.version}  load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}  (${os.cpus().length} cores)`);
const raw = lines(N);
const text = raw.toString('latin1').split('\n').filter(Boolean);
console.log(`input: ${text.length} lines, ${(raw.length / text.length).toFixed(0)} B/line (${fs.existsSync(GEN) ? GEN : 'generated here'})`);
fs.writeFileSync(path.join(tmp, 'access.log'), raw);
if (WARM) fs.writeFileSync(path.join(tmp, 'warm.log'), text.slice(0, WARM).join('\n') + '\n');

// ---- 1. in process ------------------------------------------------------
const single = text.map((l, i) => Buffer.from(`web${i % 4} ${l}\n`, 'latin1'));
const batches = [];
{
  let cur = [];
  let size = 0;
  for (const b of single) {
    if (size + b.length > 8192) {
      batches.push(Buffer.concat(cur));
      cur = [];
      size = 0;
    }
    cur.push(b);
    size += b.length;
  }
  if (cur.length) batches.push(Buffer.concat(cur));
}
const aggregators = new Map();
for (const root of BUILDS) aggregators.set(root, (await import(path.join(root, 'dist/top/aggregate.js'))).Aggregator);
for (const [name, msgs] of PARTS.includes('1') ? [
  ['one line per message', single],
  ['8 KiB batches', batches],
] : []) {
  const rates = new Map(BUILDS.map((r) => [r, []]));
  for (let r = 0; r < ROUNDS; r++) {
    for (const root of BUILDS) {
      const a = new (aggregators.get(root))();
      const s = cpu(() => {
        for (const m of msgs) a.addMessage(m, 'x');
        a.tick();
        a.snapshot();
      });
      rates.get(root).push(text.length / s);
    }
  }
  for (const root of BUILDS) console.log(`1. parse+aggregate, ${name}${label(root)}: median ${k(median(rates.get(root)))} lines/CPU-s (rounds: ${rates.get(root).map(k).join(' ')})`);
  if (BASE) console.log(`   ratio this/base: ${(median(rates.get(ROOT)) / median(rates.get(BASE))).toFixed(2)}`);
}

// ---- 2. end to end ------------------------------------------------------
function start(cmd, args, opts = {}) {
  const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...opts });
  let err = '';
  let out = '';
  p.stderr.on('data', (d) => (err += d));
  p.stdout.on('data', (d) => (out += d));
  const exited = new Promise((r) => p.on('exit', (c) => r(c)));
  return { p, err: () => err, out: () => out, exited };
}
const daemon = start(process.execPath, [CLI, '--daemon', '--name', 'bench', '--no-unix', '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
await waitUntil(() => /listening on 127\.0\.0\.1:\d+/.test(daemon.err()), 10_000, 'daemon');
const port = /listening on 127\.0\.0\.1:(\d+)/.exec(daemon.err())[1];
const spec = `${port}@127.0.0.1`;
const e2e = new Map(BUILDS.map((r) => [r, []]));
try {
  for (let r = 0; r < (PARTS.includes('2') ? ROUNDS * BUILDS.length : 0); r++) {
    const root = BUILDS[r % BUILDS.length];
    const top = start('/usr/bin/time', ['-f', 'TIME %U %S %M', process.execPath, ...TOP_FLAGS, path.join(root, 'dist', 'main.js'), 'top', '-g', 'bench', '-s', spec, '--json', '--interval', '1000', '--exit-after', String(text.length + WARM)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    await waitUntil(() => top.err().includes('joined bench'), 10_000, 'top joined');
    // CPU spent starting up (node, the module graph, the session), left out of the per-line figure.
    const nodePid = execFileSync('pgrep', ['-P', String(top.p.pid)], { encoding: 'utf8' }).trim();
    if (WARM) {
      const warm = start(process.execPath, [CLI, '-g', 'bench', '-s', spec, '-h', 'web1'], { stdio: [fs.openSync(path.join(tmp, 'warm.log'), 'r'), 'pipe', 'pipe'] });
      await warm.exited;
      // The interval's JSON object says when top has counted them.
      await waitUntil(() => top.out().trim().split('\n').some((l) => l && JSON.parse(l).lines >= WARM), 30_000, 'warm-up counted');
    }
    const startCpu = procCpu(Number(nodePid));
    const t0 = Date.now();
    // RATE=: the lines arrive at that steady rate (a farm logging), not poured.
    const pacer = RATE ? spawn(process.execPath, [path.join(ROOT, 'bench', 'pace.mjs'), String(RATE), path.join(tmp, 'access.log')], { stdio: ['ignore', 'pipe', 'inherit'] }) : undefined;
    const pub = start(process.execPath, [CLI, '-g', 'bench', '-s', spec, '-h', 'web1', '--queue-lines', String(text.length + 1)], { stdio: [pacer ? pacer.stdout : fs.openSync(path.join(tmp, 'access.log'), 'r'), 'pipe', 'pipe'] });
    await pub.exited;
    const tPub = Date.now();
    // unref: the guard must not keep the bench alive for two minutes after the last run.
    const code = await Promise.race([top.exited, new Promise((r) => setTimeout(() => r('timeout'), 120_000).unref())]);
    const tTop = Date.now();
    const wall = (tTop - t0) / 1000;
    const m = /TIME ([\d.]+) ([\d.]+) (\d+)/.exec(top.err());
    if (code !== 0 || !m) {
      console.log(`2. end to end: top exited ${code}: ${top.err().slice(-300)}`);
      // The node under /usr/bin/time too: killing time alone leaves it waiting for lines.
      try {
        process.kill(Number(nodePid));
      } catch {
        /* gone */
      }
      top.p.kill();
      continue;
    }
    const total = Number(m[1]) + Number(m[2]);
    const s = total - startCpu;
    const last = JSON.parse(top.out().trim().split('\n').pop());
    const counted = last.lines - WARM;
    e2e.get(root).push(counted / s);
    // Paced: top keeps up when it needs less than a core for the rate and has counted the last line soon after it was sent.
    if (RATE) console.log(`2. paced at ${k(RATE)} lines/s${label(root)} (publisher start-up included: ${k(counted / ((tPub - t0) / 1000))} lines/s arrived): top used ${(s / wall).toFixed(2)} of a core over ${wall.toFixed(2)} s; done ${((tTop - tPub) / 1000).toFixed(2)} s after the publisher exited`);
    console.log(
      `2. end to end${label(root)} (pipe -> daemon -> top --interval 1000): ${counted} lines, top CPU ${s.toFixed(2)} s after start-up${WARM ? ` and ${WARM} warm-up lines` : ''} (${startCpu.toFixed(2)} s before) = ${k(counted / s)} lines/CPU-s (${((s / counted) * 1e6).toFixed(2)} µs/line), wall ${wall.toFixed(2)} s, peak RSS ${Math.round(Number(m[3]) / 1024)} MB`,
    );
  }

  for (const root of BUILDS) if (e2e.get(root).length) console.log(`2. end to end${label(root)}: median ${k(median(e2e.get(root)))} lines/CPU-s`);
  if (BASE && e2e.get(ROOT).length && e2e.get(BASE).length) console.log(`   ratio this/base: ${(median(e2e.get(ROOT)) / median(e2e.get(BASE))).toFixed(2)}`);

  // ---- 4. --metrics on pipe mode -------------------------------------------
  const help = execFileSync(process.execPath, [CLI, '--help'], { encoding: 'utf8' });
  if (!PARTS.includes('4')) {
    // skipped
  } else if (!help.includes('--metrics')) {
    console.log('4. --metrics: not in this build of pipe mode');
  } else {
    const runs = { without: [], with: [] };
    for (let r = 0; r < ROUNDS * 2; r++) {
      const withMetrics = r % 2 === 1;
      const args = [CLI, '-g', 'bench', '-s', spec, '-h', 'web1', '--queue-lines', String(text.length + 1), ...(withMetrics ? ['--metrics', '127.0.0.1:0'] : [])];
      const pub = start('/usr/bin/time', ['-f', 'TIME %U %S %M', process.execPath, ...args], { stdio: [fs.openSync(path.join(tmp, 'access.log'), 'r'), 'pipe', 'pipe'] });
      // Scrape while it runs, as Prometheus would (every 100 ms here, far more often than usual).
      let scrapes = 0;
      const scraper = setInterval(async () => {
        const mm = /metrics on http:\/\/([^/\s]+)/.exec(pub.err());
        if (!mm) return;
        try {
          await (await fetch(`http://${mm[1]}/metrics`)).text();
          scrapes++;
        } catch {
          /* ended */
        }
      }, 100);
      await pub.exited;
      clearInterval(scraper);
      const m = /TIME ([\d.]+) ([\d.]+) (\d+)/.exec(pub.err());
      const s = Number(m[1]) + Number(m[2]);
      runs[withMetrics ? 'with' : 'without'].push((s / text.length) * 1e6);
      if (withMetrics && scrapes === 0) console.log('   (no scrape landed in this run)');
    }
    console.log(`4. pipe mode CPU per line: without --metrics median ${median(runs.without).toFixed(2)} µs (${runs.without.map((v) => v.toFixed(2)).join(' ')}), with --metrics scraped every 100 ms median ${median(runs.with).toFixed(2)} µs (${runs.with.map((v) => v.toFixed(2)).join(' ')})`);
  }
} finally {
  daemon.p.kill();
}

// ---- 3. memory ------------------------------------------------------------
const memScript = `
const { Aggregator } = await import(${JSON.stringify(path.join(ROOT, 'dist/top/aggregate.js'))});
const a = new Aggregator();
const mb = (v) => Math.round(v / 1048576);
const line = (i, j) => Buffer.from('web1 ' + (j >>> 24) + '.' + ((j >>> 16) & 255) + '.' + ((j >>> 8) & 255) + '.' + (j & 255) + ' - - [14/Nov/2023:22:13:20 +0000] "GET /catalog/item/' + i + '.html?session=' + i + ' HTTP/1.1" 200 5120 "https://www.example.com/shop/index.html" "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"\\n', 'latin1');
global.gc();
const base = process.memoryUsage();
let i = 0;
for (const target of [1_000_000, 3_000_000]) {
  for (; i < target; i++) a.addMessage(line(i, 0x0b000000 + i), 'x');
  a.tick();
  const s = a.snapshot();
  // Array buffers are freed after a GC, not in it: give the sweeper a moment.
  global.gc();
  await new Promise((r) => setTimeout(r, 200));
  global.gc();
  const m = process.memoryUsage();
  console.log('3. after ' + (target / 1e6) + 'M distinct URLs and clients: heap ' + mb(m.heapUsed) + ' MB (+' + mb(m.heapUsed - base.heapUsed) + '), typed arrays ' + mb(m.arrayBuffers) + ' MB (+' + mb(m.arrayBuffers - base.arrayBuffers) + '), RSS ' + mb(m.rss) + ' MB; distinct_clients ' + s.distinct_clients + ' exact=' + s.distinct_clients_exact + ', online ' + s.online_clients + ' exact=' + s.online_clients_exact + ', top_urls exact=' + s.top_exact.urls);
}
`;
fs.writeFileSync(path.join(tmp, 'mem.mjs'), memScript);
if (PARTS.includes('3')) process.stdout.write(execFileSync(process.execPath, ['--expose-gc', path.join(tmp, 'mem.mjs')], { encoding: 'utf8' }));
