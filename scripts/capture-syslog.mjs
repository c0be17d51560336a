#!/usr/bin/env node
// Record real syslog datagrams as test fixtures (test/fixtures/syslog/*.json):
// nginx's access_log syslog: (RFC 3164, with and without hostname) next to
// the line nginx writes to a file with the same log_format, and rsyslog
// forwarding in RFC 5424 and traditional format. Loopback only; needs
// Debian's nginx and rsyslog. Run: node scripts/capture-syslog.mjs
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

const unixDgram = createRequire(import.meta.url)('unix-dgram');

const out = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../test/fixtures/syslog');
fs.mkdirSync(out, { recursive: true });
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'capture-syslog-'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function listen() {
  const sock = dgram.createSocket('udp4');
  const got = [];
  sock.on('message', (m) => got.push(m));
  await new Promise((r) => sock.bind(0, '127.0.0.1', r));
  return { sock, got, port: sock.address().port };
}

/** A unix datagram socket nginx's worker can write to (syslog:server=unix:PATH). */
function listenUnix(file) {
  const got = [];
  const sock = unixDgram.createSocket('unix_dgram', (m) => got.push(Buffer.from(m)));
  sock.bind(file);
  fs.chmodSync(file, 0o666);
  return { sock, got };
}

async function nginx() {
  const rx = await listen();
  const ux = listenUnix(path.join(work, 'nginx-syslog.sock'));
  const port = 20000 + Math.floor(Math.random() * 20000);
  fs.mkdirSync(path.join(work, 'html'), { recursive: true });
  fs.writeFileSync(path.join(work, 'html', 'index.html'), 'hi\n');
  fs.writeFileSync(
    path.join(work, 'nginx.conf'),
    `daemon off; master_process off; pid ${work}/nginx.pid; error_log ${work}/error.log;
events {}
http {
  access_log off; large_client_header_buffers 4 64k; client_body_temp_path ${work}; proxy_temp_path ${work}; fastcgi_temp_path ${work}; uwsgi_temp_path ${work}; scgi_temp_path ${work};
  log_format combined2 '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"';
  server {
    listen 127.0.0.1:${port}; root ${work}/html;
    access_log ${work}/access.log combined2;
    access_log syslog:server=127.0.0.1:${rx.port},tag=jigdo combined2;
    access_log syslog:server=127.0.0.1:${rx.port},tag=nohost,nohostname combined2;
    access_log syslog:server=127.0.0.1:${rx.port},facility=local0,severity=notice,tag=local0 combined2;
    access_log syslog:server=unix:${work}/nginx-syslog.sock,tag=viaunix combined2;
  }
}`,
  );
  const p = spawn('/usr/sbin/nginx', ['-c', path.join(work, 'nginx.conf'), '-p', work], { stdio: 'inherit' });
  await sleep(500);
  // A 40 KB request line: nginx neither truncates nor splits it (one datagram).
  const paths = ['/', '/missing?q=a%20b&x="quoted"', '/' + 'long'.repeat(600), '/utf8/caf%C3%A9', '/huge?' + 'x'.repeat(40000)];
  for (const u of paths) {
    await new Promise((resolve) =>
      http.get({ host: '127.0.0.1', port, path: u, headers: { 'User-Agent': 'capture "agent" \\ é', Referer: 'http://ref/' } }, (r) => r.resume().on('end', resolve)),
    );
  }
  await sleep(300);
  p.kill('SIGTERM');
  rx.sock.close();
  ux.sock.close();
  const lines = fs.readFileSync(path.join(work, 'access.log'), 'latin1').trimEnd().split('\n');
  const version = spawnSync('/usr/sbin/nginx', ['-v'], { encoding: 'latin1' }).stderr.trim().replace(/^nginx version: /, '');
  return {
    source: `${version}: access_log syslog:server=127.0.0.1:PORT with tag=jigdo, tag=nohost,nohostname and facility=local0,severity=notice,tag=local0 (datagrams), syslog:server=unix:PATH,tag=viaunix (unixDatagrams), and a file access_log (fileLines), same log_format, one request per fileLines entry`,
    fileLines: lines,
    datagrams: rx.got.map((b) => b.toString('base64')),
    unixDatagrams: ux.got.map((b) => b.toString('base64')),
  };
}

async function rsyslog() {
  const rx = await listen();
  const inPort = 20000 + Math.floor(Math.random() * 20000);
  fs.writeFileSync(
    path.join(work, 'rsyslog.conf'),
    `global(workDirectory="${work}")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="${inPort}")
*.* action(type="omfwd" target="127.0.0.1" port="${rx.port}" protocol="udp" template="RSYSLOG_SyslogProtocol23Format")
*.* action(type="omfwd" target="127.0.0.1" port="${rx.port}" protocol="udp" template="RSYSLOG_TraditionalForwardFormat")
*.* action(type="omfwd" target="127.0.0.1" port="${rx.port}" protocol="udp" template="RSYSLOG_ForwardFormat")
`,
  );
  const p = spawn('/usr/sbin/rsyslogd', ['-n', '-f', path.join(work, 'rsyslog.conf'), '-i', path.join(work, 'rsyslog.pid')], { stdio: 'inherit' });
  await sleep(1000);
  try {
  for (const [tag, msg] of [['jigdo', '127.0.0.1 - - [23/Nov/2026:06:00:00 +0000] "GET / HTTP/1.1" 200 3 "-" "curl"'], ['app', 'plain message with ] bracket']]) {
    execFileSync('/usr/bin/logger', ['-n', '127.0.0.1', '-P', String(inPort), '-d', '-t', tag, msg]);
    execFileSync('/usr/bin/logger', ['-n', '127.0.0.1', '-P', String(rx.port), '-d', '--rfc5424', '-t', tag, '--sd-id', 'x@32473', '--sd-param', 'k="v\\]"', msg]);
  }
  } finally {
    await sleep(1000);
    p.kill('SIGTERM');
    rx.sock.close();
  }
  const version = spawnSync('/usr/sbin/rsyslogd', ['-v'], { encoding: 'latin1' }).stdout.split('\n')[0].replace(/ compiled with.*/, '').trim();
  return { source: `${version}: omfwd with RSYSLOG_SyslogProtocol23Format, RSYSLOG_TraditionalForwardFormat and RSYSLOG_ForwardFormat of what util-linux logger sent it, and logger --rfc5424 sent directly`, datagrams: rx.got.map((b) => b.toString('base64')) };
}

if (!process.argv.includes('--rsyslog-only')) fs.writeFileSync(path.join(out, 'nginx.json'), JSON.stringify(await nginx(), null, 1) + '\n');
fs.writeFileSync(path.join(out, 'rsyslog.json'), JSON.stringify(await rsyslog(), null, 1) + '\n');
fs.rmSync(work, { recursive: true, force: true });
console.log(`wrote ${out}/nginx.json and rsyslog.json`);
