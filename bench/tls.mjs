#!/usr/bin/env node
/**
 * TLS benchmark (#15), run on demand, never in CI:
 *
 *   npm run bench:tls                      # builds, then N=200000 RUNS=3
 *   N=500000 RUNS=5 CASES=plain,tls node bench/tls.mjs
 *
 * Pipe mode over TLS against plaintext into the built-in daemon, side by
 * side in one run (runs interleaved case by case, medians printed): one
 * `spread-pipe --daemon` with a tls:// listener beside a plain one (fresh per
 * run), a plain `spread-pipe tail` subscriber writing to a file, and the
 * publisher dialing `-s PORT@127.0.0.1` or `-s tls://127.0.0.1:PORT`.
 *   plain      1 line per message, plaintext
 *   tls        1 line per message, TLS (TLS 1.3, AES-GCM: what Node negotiates)
 *   plain-batch / tls-batch   --batch
 * Publisher CPU is /proc/PID/stat from after start-up (a warm-up line has
 * reached the subscriber) to the last line at the subscriber; the daemon's
 * likewise. Goal (#15): TLS at most 1.5x the publisher's CPU per line.
 * The certificates are made at start with Debian's openssl (EC P-256).
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpu, startNode, track, waitUntil } from './proc.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'dist', 'main.js');
const N = Number(process.env.N ?? 200_000);
const RUNS = Number(process.env.RUNS ?? 3);
const CASES = (process.env.CASES ?? 'plain,tls,plain-batch,tls-batch').split(',');
const GROUP = 'bench';
/** DAEMON_NODE_FLAGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", to look inside the daemon. */
const DAEMON_FLAGS = process.env.DAEMON_NODE_FLAGS ? process.env.DAEMON_NODE_FLAGS.split(' ') : [];
const TAG = 'web1 ';
const KINDS = {
  plain: { tls: false, args: [] },
  tls: { tls: true, args: [] },
  'plain-batch': { tls: false, args: ['--batch'] },
  'tls-batch': { tls: true, args: ['--batch'] },
};
for (const c of CASES) if (!KINDS[c]) (console.error(`unknown case ${c}`), process.exit(2));
if (!fs.existsSync(CLI)) (console.error('build first: npm run build'), process.exit(2));

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'spread-pipe-bench-tls-'));
process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }));
process.on('SIGINT', () => process.exit(130));

function start(args, stdio, flags = []) {
  return startNode(CLI, args, stdio, flags);
}

function pki() {
  const o = (...args) => execFileSync('openssl', args, { cwd: work, stdio: ['ignore', 'ignore', 'pipe'] });
  for (const k of ['ca', 'server']) o('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${k}.key`);
  o('req', '-x509', '-new', '-key', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=bench CA', '-addext', 'basicConstraints=critical,CA:TRUE');
  o('req', '-new', '-key', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  fs.writeFileSync(path.join(work, 'server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  o('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'server.ext');
  return { ca: path.join(work, 'ca.pem'), cert: path.join(work, 'server.pem'), key: path.join(work, 'server.key') };
}

function lines(n) {
  let s = 1;
  const rnd = (k) => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0), (s >>> 8) % k);
  const out = [];
  for (let i = 0; i < n; i++) {
    out.push(
      `${1 + rnd(223)}.${rnd(256)}.${rnd(256)}.${1 + rnd(254)} - - [14/Nov/2023:22:13:${String(rnd(60)).padStart(2, '0')} +0000] "GET /shop/item/${rnd(99999)}?page=${rnd(50)} HTTP/1.1" 200 ${rnd(30000)} "https://www.example.com/list.html" "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"\n`,
    );
  }
  return out.join('');
}

async function one(kind, files, input, bytes) {
  const k = KINDS[kind];
  const d = start(['--daemon', '--name', 'localhost', '--no-unix', '--listen', 'tls://127.0.0.1:0', '--listen', '127.0.0.1:0', '--tls-cert', files.cert, '--tls-key', files.key], ['ignore', 'ignore', 'pipe'], DAEMON_FLAGS);
  await waitUntil(() => /ready/.test(d.err), 10_000, 'the daemon', d);
  const tlsPort = /listening on tls:\/\/127\.0\.0\.1:(\d+)/.exec(d.err)[1];
  const plainPort = /listening on 127\.0\.0\.1:(\d+)/.exec(d.err)[1];
  const out = path.join(work, `out-${kind}`);
  const fd = fs.openSync(out, 'w');
  const t = start(['tail', '-g', GROUP, '-s', `${plainPort}@127.0.0.1`, '--membership'], ['ignore', fd, 'pipe']);
  fs.closeSync(fd);
  await waitUntil(() => fs.readFileSync(out, 'latin1').includes('# membership'), 10_000, 'tail to join', t);
  const offset = fs.statSync(out).size;
  const size = () => fs.statSync(out).size - offset;
  const fifo = path.join(work, `in-${kind}-${Date.now()}`);
  execFileSync('mkfifo', [fifo]);
  const wfd = fs.openSync(fifo, fs.constants.O_RDWR);
  const rfd = fs.openSync(fifo, fs.constants.O_RDONLY);
  const spec = k.tls ? `tls://127.0.0.1:${tlsPort}` : `${plainPort}@127.0.0.1`;
  // --tls-ca without a tls:// daemon is a usage error: given for TLS only.
  const ca = k.tls ? ['--tls-ca', files.ca] : [];
  const p = start(['-g', GROUP, '-h', 'web1', '-s', spec, ...ca, '--queue-lines', String(N + 1000), '--queue-bytes', String(2 * bytes + (1 << 20)), '--drain-timeout', '300000', ...k.args], [rfd, 'ignore', 'pipe']);
  fs.closeSync(rfd);
  fs.writeSync(wfd, 'warm-up\n');
  await waitUntil(() => size() >= TAG.length + 8, 10_000, 'the warm-up line', p);
  const c0 = { p: cpu(p.pid), d: cpu(d.pid) };
  let last = c0.p;
  const t0 = process.hrtime.bigint();
  track(spawn('cat', [input], { stdio: ['ignore', wfd, 'inherit'] }));
  fs.closeSync(wfd);
  const want = TAG.length + 8 + bytes;
  await waitUntil(
    () => {
      const c = cpu(p.pid);
      if (Number.isFinite(c)) last = c;
      return size() >= want;
    },
    300_000,
    'all lines',
    p,
  );
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const dCpu = cpu(d.pid) - c0.d;
  await p.exited;
  for (const c of [t, d]) c.kill('SIGTERM');
  await Promise.all([t.exited, d.exited]);
  return { linesPerSec: N / secs, pub: ((last - c0.p) * 1e5) / N, dmn: (dCpu * 1e5) / N };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  const files = pki();
  const input = path.join(work, 'lines.txt');
  const text = lines(N);
  fs.writeFileSync(input, text);
  const bytes = Buffer.byteLength(text) + N * TAG.length;
  const res = Object.fromEntries(CASES.map((c) => [c, []]));
  for (let r = 0; r < RUNS; r++) for (const c of CASES) res[c].push(await one(c, files, input, bytes));
  console.log(`pipe mode over TLS vs plaintext into the built-in daemon: ${N} lines (~${Math.round(bytes / N)} B tagged), medians of ${RUNS} runs, ${os.cpus().length} cores, node ${process.version}`);
  console.log('case          lines/s   publisher CPU s/100k lines   daemon CPU s/100k lines');
  const m = {};
  for (const c of CASES) {
    m[c] = { l: median(res[c].map((x) => x.linesPerSec)), p: median(res[c].map((x) => x.pub)), d: median(res[c].map((x) => x.dmn)) };
    console.log(`${c.padEnd(12)} ${String(Math.round(m[c].l)).padStart(8)}   ${m[c].p.toFixed(3).padStart(26)}   ${m[c].d.toFixed(3).padStart(23)}`);
  }
  for (const [a, b] of [['tls', 'plain'], ['tls-batch', 'plain-batch']]) {
    if (!m[a] || !m[b]) continue;
    // Ratios per run (paired: the runs are interleaved), then the median.
    const ratios = res[a].map((x, i) => x.pub / res[b][i].pub);
    const rate = res[a].map((x, i) => x.linesPerSec / res[b][i].linesPerSec);
    console.log(`${a} / ${b}: publisher CPU per line x${median(ratios).toFixed(2)} (goal <= 1.5), lines/s x${median(rate).toFixed(2)}, daemon CPU per line x${(m[a].d / m[b].d).toFixed(2)}`);
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
