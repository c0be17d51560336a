#!/usr/bin/env node
/**
 * Syslog bridge benchmark (issue 5), run on demand, never in CI:
 *
 *   npm run bench:syslog                          # builds, then UDP and unix steps
 *   RATES=20000,80000,max SECONDS=3 CASES=udp node bench/syslog.mjs
 *
 * What datagram rate the bridge sustains without loss on loopback. Every
 * process but the sender is the product: `spread-pipe --daemon`,
 * `spread-pipe tail` writing to a file, and the bridge `spread-pipe
 * --syslog udp://127.0.0.1:0 --syslog unix:PATH`. A separate sender process
 * (this file with --sender) sends nginx-like datagrams
 * `<190>Mmm dd hh:mm:ss web1 jigdo: 127.0.0.1 - - [...] "GET /seq/N ..."`
 * at each target rate for SECONDS (or as fast as it can: "max").
 *
 * Loss is counted three ways: the kernel's UDP receive-buffer overflows
 * (/proc/net/snmp Udp RcvbufErrors, for this network namespace), datagrams a
 * unix socket would not take (the sender's EAGAIN: nginx drops those lines),
 * and sequence numbers missing at the subscriber (which also catches drops
 * in the bridge's queue or beyond). Bridge CPU is from /proc/PID/stat.
 */
import { spawn, execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'dist', 'main.js');
const SELF = fileURLToPath(import.meta.url);

/** One datagram as nginx sends it with `access_log syslog:server=...,tag=jigdo combined`. */
function datagram(seq) {
  return Buffer.from(
    `<190>Nov 23 06:42:47 web1 jigdo: 127.0.0.1 - - [23/Nov/2026:06:42:47 +0000] "GET /seq/${seq} HTTP/1.1" 200 612 "http://example.org/ref" "Mozilla/5.0 (X11; Linux x86_64) bench"`,
    'latin1',
  );
}

if (process.argv[2] === '--sender') await sender(process.argv.slice(3));
else await main();

// ---------------------------------------------------------------------------
// Sender: a child process, so that the bridge does not share its event loop.

async function sender([kind, target, rateArg, countArg, startArg]) {
  const rate = rateArg === 'max' ? Infinity : Number(rateArg);
  const count = Number(countArg);
  const start = Number(startArg);
  let send;
  let finish;
  let refused = 0;
  let pending = 0;
  let done;
  const allSent = new Promise((r) => (done = r));
  const settle = () => {
    if (--pending === 0 && sent === count) done();
  };
  if (kind === 'udp') {
    const sock = dgram.createSocket('udp4');
    await new Promise((r) => sock.connect(Number(target), '127.0.0.1', r));
    send = (b) => {
      pending++;
      sock.send(b, (e) => {
        if (e) refused++;
        settle();
      });
    };
    finish = () => sock.close();
  } else {
    const { createSocket } = createRequire(import.meta.url)('unix-dgram');
    const sock = createSocket('unix_dgram');
    sock.on('error', () => {});
    sock.on('congestion', () => {});
    send = (b) => {
      pending++;
      // Like nginx: a datagram the socket will not take now is lost, not retried.
      sock.send(b, 0, b.length, target, (e) => {
        if (e) refused++;
        settle();
      });
    };
    finish = () => sock.close();
  }
  let sent = 0;
  const t0 = process.hrtime.bigint();
  await new Promise((resolve) => {
    const tick = () => {
      const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
      const due = rate === Infinity ? sent + 512 : Math.floor(elapsed * rate);
      const upTo = Math.min(count, due);
      while (sent < upTo) send(datagram(start + sent++));
      if (sent < count) setImmediate(tick);
      else resolve();
    };
    tick();
  });
  if (pending > 0) await allSent;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  finish();
  process.stdout.write(JSON.stringify({ sent, refused, seconds }) + '\n');
}

// ---------------------------------------------------------------------------

async function main() {
  const RATES = (process.env.RATES ?? '5000,10000,20000,40000,80000,160000,max').split(',');
  const SECONDS = Number(process.env.SECONDS ?? 2);
  const CASES = (process.env.CASES ?? 'udp,unix').split(',');
  const TICK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  if (!fs.existsSync(CLI)) {
    console.error('build first: npm run build');
    process.exit(2);
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'spread-pipe-bench-syslog-'));
  const children = new Set();
  const cleanup = () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    fs.rmSync(work, { recursive: true, force: true });
  };
  process.on('exit', cleanup);
  process.on('SIGINT', () => process.exit(130));

  const start = (args, out = 'pipe') => {
    const c = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', out, 'pipe'] });
    children.add(c);
    c.err = '';
    c.stderr.on('data', (b) => (c.err += b.toString()));
    return c;
  };
  const waitFor = async (check, what, ms = 10_000) => {
    const end = Date.now() + ms;
    for (;;) {
      const v = check();
      if (v) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const cpuSeconds = (pid) => {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const v = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(v[11]) + Number(v[12])) / TICK;
  };
  const udpErrors = () => {
    const lines = fs.readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'));
    const [names, values] = lines.map((l) => l.trim().split(/\s+/).slice(1));
    const o = Object.fromEntries(names.map((n, i) => [n, Number(values[i])]));
    return { rcvbuf: o.RcvbufErrors, inErrors: o.InErrors };
  };

  const daemon = start(['--daemon', '--no-unix', '--listen', '127.0.0.1:0', '--name', 'bench']);
  const port = Number((await waitFor(() => /listening on 127\.0\.0\.1:(\d+)/.exec(daemon.err), 'daemon'))[1]);
  const spec = `${port}@127.0.0.1`;
  const outFile = path.join(work, 'tail.out');
  const outFd = fs.openSync(outFile, 'w');
  const tail = start(['tail', '-g', 'bench', '-s', spec, '--membership'], outFd);
  await waitFor(() => fs.readFileSync(outFile, 'latin1').includes('# membership'), 'tail to join');
  const sock = path.join(work, 'syslog.sock');
  const bridge = start(['--syslog', 'udp://127.0.0.1:0', '--syslog', `unix:${sock}`, '-g', 'bench', '-s', spec, '--report-interval', '3600000']);
  const udpPort = Number((await waitFor(() => /listening on udp:\/\/127\.0\.0\.1:(\d+).*\n[^]*listening on unix/.exec(bridge.err), `bridge: ${bridge.err}`))[1]);
  const rcvbufLine = /listening on udp:[^\n]*/.exec(bridge.err)[0];

  // The subscriber's file, read incrementally: which sequence numbers arrived.
  let offset = 0;
  let carry = '';
  const seen = new Set();
  const readTail = () => {
    const size = fs.statSync(outFile).size;
    if (size > offset) {
      const fd = fs.openSync(outFile, 'r');
      const buf = Buffer.alloc(size - offset);
      fs.readSync(fd, buf, 0, buf.length, offset);
      fs.closeSync(fd);
      offset = size;
      const text = carry + buf.toString('latin1');
      const lines = text.split('\n');
      carry = lines.pop();
      for (const l of lines) {
        const m = /\/seq\/(\d+) /.exec(l);
        if (m) seen.add(Number(m[1]));
      }
    }
    return seen.size;
  };
  const bridgeCounters = async () => {
    const before = bridge.err.length;
    bridge.kill('SIGUSR1');
    const text = await waitFor(() => {
      const t = bridge.err.slice(before);
      return /syslog datagrams=/.test(t) && /counters: read=/.test(t) ? t : '';
    }, 'bridge counters');
    const num = (re) => Number(re.exec(text)?.[1] ?? NaN);
    return { datagrams: num(/syslog datagrams=(\d+)/), refused: num(/refused=(\d+)/), queueFull: num(/queue-full=(\d+)/), sent: num(/sent_lines=(\d+)/) };
  };
  const runSender = (kind, target, rate, count, first) =>
    new Promise((resolve, reject) => {
      const c = spawn(process.execPath, [SELF, '--sender', kind, target, String(rate), String(count), String(first)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      c.stdout.on('data', (b) => (out += b));
      c.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`sender exited ${code}`))));
    });

  console.log(`syslog bridge benchmark: ${os.cpus().length} cores, node ${process.version}, ${SECONDS} s per step`);
  console.log(`bridge: ${rcvbufLine.replace(/^listening on /, '')}; net.core.rmem_max=${fs.readFileSync('/proc/sys/net/core/rmem_max', 'utf8').trim()}, net.unix.max_dgram_qlen=${fs.readFileSync('/proc/sys/net/unix/max_dgram_qlen', 'utf8').trim()}`);
  console.log(`datagram: ${datagram(0).length} bytes, nginx combined format\n`);
  const qlen = Number(fs.readFileSync('/proc/sys/net/unix/max_dgram_qlen', 'utf8'));
  if (CASES.includes('unix') && qlen < 512) {
    console.log(`note: a unix datagram socket queues at most net.unix.max_dgram_qlen=${qlen} datagrams; a sender (nginx) loses what`);
    console.log(`      arrives while that many wait. systemd sets 512; as root: sysctl -w net.unix.max_dgram_qlen=512\n`);
  }
  const results = [];
  let seq = 0;
  for (const kind of CASES) {
    console.log(`${kind}:`);
    console.log('  target/s   offered/s  bridge_rx  delivered  kernel_drop  refused_at_send  queue_drop  lost   bridge_us/dgram');
    for (const r of RATES) {
      const count = r === 'max' ? 200_000 : Math.round(Number(r) * SECONDS);
      const first = seq;
      seq += count;
      const k0 = udpErrors();
      const b0 = await bridgeCounters();
      const cpu0 = cpuSeconds(bridge.pid);
      const s = await runSender(kind, kind === 'udp' ? String(udpPort) : sock, r, count, first);
      // Delivered: stop when every datagram the bridge could have had arrived, or nothing moves for 1.5 s.
      let last = -1;
      let still = Date.now();
      for (;;) {
        const n = readTail();
        const mine = [...seen].filter((x) => x >= first && x < first + count).length;
        if (mine >= count - s.refused) break;
        if (n !== last) {
          last = n;
          still = Date.now();
        } else if (Date.now() - still > 1500) break;
        await new Promise((res) => setTimeout(res, 50));
      }
      const cpu = cpuSeconds(bridge.pid) - cpu0;
      const b1 = await bridgeCounters();
      const k1 = udpErrors();
      let delivered = 0;
      for (let x = first; x < first + count; x++) if (seen.has(x)) delivered++;
      const rx = b1.datagrams - b0.datagrams;
      const row = {
        kind,
        target: r,
        offered: Math.round(s.sent / s.seconds),
        rx,
        delivered,
        kernelDrop: kind === 'udp' ? k1.rcvbuf - k0.rcvbuf : 0,
        refusedAtSend: s.refused,
        queueDrop: b1.queueFull - b0.queueFull,
        lost: count - delivered,
        usPerDatagram: rx ? (cpu * 1e6) / rx : NaN,
      };
      results.push(row);
      console.log(
        `  ${String(r).padStart(8)}  ${String(row.offered).padStart(9)}  ${String(rx).padStart(9)}  ${String(delivered).padStart(9)}  ${String(row.kernelDrop).padStart(11)}  ${String(row.refusedAtSend).padStart(15)}  ${String(row.queueDrop).padStart(10)}  ${String(row.lost).padStart(6)}   ${row.usPerDatagram.toFixed(1).padStart(6)}`,
      );
    }
    const ok = results.filter((x) => x.kind === kind && x.lost === 0);
    const best = ok.reduce((a, x) => (x.offered > (a?.offered ?? 0) ? x : a), undefined);
    console.log(
      best
        ? `  => sustained without loss: ${best.offered} datagrams/s (target ${best.target})\n`
        : `  => loss at every rate tried\n`,
    );
  }
  bridge.kill('SIGTERM');
  await new Promise((r) => bridge.on('exit', r));
  tail.kill('SIGTERM');
  daemon.kill('SIGTERM');
  if (process.env.JSON) fs.writeFileSync(process.env.JSON, JSON.stringify(results, null, 1));
}
