#!/usr/bin/env node
/**
 * Make README's screenshots of `top` (docs/top-page.png, docs/top-terminal.png):
 * a built-in daemon, three web servers publishing generated lines for a while,
 * `top --http` in tmux, the page in headless Chromium, and the terminal's
 * screen (tmux capture-pane with colours) drawn as HTML in the same browser.
 *   npm run build && node scripts/top-screenshots.mjs [SECONDS]
 * Needs tmux and chromium (Debian), playwright-core (devDependency).
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'dist', 'main.js');
const SECONDS = Number(process.argv[2] ?? 40);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'spread-pipe-shots-'));
const SOCK = `spread-pipe-shots-${process.pid}`;
const children = [];
const tmux = (...a) => execFileSync('tmux', ['-L', SOCK, ...a], { encoding: 'utf8' });
process.on('exit', () => {
  for (const c of children) c.kill();
  try {
    tmux('kill-server');
  } catch {
    /* gone */
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const daemon = spawn(process.execPath, [CLI, '--daemon', '--name', 'loghost', '--no-unix', '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'ignore', 'pipe'] });
children.push(daemon);
let derr = '';
daemon.stderr.on('data', (d) => (derr += d));
while (!/listening on 127\.0\.0\.1:\d+/.test(derr)) await sleep(50);
const spec = `${/listening on 127\.0\.0\.1:(\d+)/.exec(derr)[1]}@127.0.0.1`;
const httpPort = 20000 + (process.pid % 20000);

tmux('-f', '/dev/null', 'new-session', '-d', '-s', 'top', '-x', '120', '-y', '34', `${process.execPath} ${CLI} top -g jigdo -s ${spec} --http 127.0.0.1:${httpPort}`);
await sleep(1500);

// Three web servers of different weight; a burst of 5xx from web3 half-way.
let seed = 7;
const r = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
const PAGES = ['/', '/jigdo/debian-12.5.0-amd64-DVD-1.jigdo', '/jigdo/debian-12.5.0-amd64-DVD-1.template', '/fedora/40/x86_64/', '/index.html', '/mirrors.html', '/favicon.ico', '/robots.txt'];
const AGENTS = ['jigdo-lite/0.8.1', 'Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0', 'Wget/1.21.4', 'curl/8.4.0'];
const pubs = ['web1', 'web2', 'web3'].map((h) => {
  const p = spawn(process.execPath, [CLI, '-g', 'jigdo', '-s', spec, '-h', h], { stdio: ['pipe', 'ignore', 'ignore'] });
  children.push(p);
  return { h, p };
});
const t0 = Date.now();
let stop = false;
const feeding = (async () => {
while (!stop) {
  const phase = (Date.now() - t0) / 1000;
  for (const [i, { h, p }] of pubs.entries()) {
    const n = Math.round((3 - i) * 20 * (1 + Math.sin(phase / 6 + i)) + 10);
    let out = '';
    for (let j = 0; j < n; j++) {
      const u = PAGES[Math.min(PAGES.length - 1, Math.floor(-Math.log(r()) * 1.6))];
      const bad = h === 'web3' && phase > SECONDS * 0.55 && phase < SECONDS * 0.75 && r() < 0.3;
      const st = bad ? 503 : r() < 0.05 ? 404 : r() < 0.1 ? 304 : 200;
      const ip = `192.0.2.${Math.floor(r() * 200) + 1}`;
      out += `${ip} - - [01/Dec/2026:09:00:00 +0000] "GET ${u} HTTP/1.1" ${st} ${st === 200 ? Math.floor(r() * 90000) : 0} "-" "${AGENTS[Math.floor(r() * AGENTS.length)]}"\n`;
    }
    p.stdin.write(out);
  }
  if (Math.floor(phase) % 15 === 3) pubs[0].p.stdin.write('this line is not an access log line\n');
  await sleep(100);
}
})();
await sleep(SECONDS * 1000);

fs.mkdirSync(path.join(ROOT, 'docs'), { recursive: true });
const browser = await chromium.launchPersistentContext(path.join(tmp, 'profile'), {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1280, height: 900 },
});
const page = await browser.newPage();
await page.goto(`http://127.0.0.1:${httpPort}/`);
await page.waitForFunction(() => Number(document.body.dataset.snapshots) >= 2);
await page.screenshot({ path: path.join(ROOT, 'docs', 'top-page.png') });

// The terminal: capture-pane with SGR colours, drawn as HTML.
const ansi = tmux('capture-pane', '-p', '-e', '-t', 'top');
const COLORS = { 31: '#ff5f5f', 32: '#7bd88f', 33: '#f5c35b', 36: '#5fb3f9' };
let html = '';
let open = false;
const esc = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
for (const part of ansi.split(/(\x1b\[[0-9;]*m)/)) {
  const m = /^\x1b\[([0-9;]*)m$/.exec(part);
  if (!m) {
    html += esc(part);
    continue;
  }
  if (open) html += '</span>';
  open = false;
  const codes = m[1].split(';').map(Number);
  if (codes.every((c) => c === 0)) continue;
  const style = [];
  for (const c of codes) {
    if (c === 1) style.push('font-weight:bold');
    if (c === 2) style.push('opacity:.6');
    if (c === 7) style.push('background:#d8dee9;color:#111418');
    if (COLORS[c]) style.push(`color:${COLORS[c]}`);
  }
  html += `<span style="${style.join(';')}">`;
  open = true;
}
if (open) html += '</span>';
await page.setViewportSize({ width: 1000, height: 600 });
await page.setContent(`<body style="margin:0;background:#111418"><pre style="margin:0;padding:10px;color:#d8dee9;font:13px/1.25 'DejaVu Sans Mono',monospace">${html}</pre></body>`);
const pre = await page.$('pre');
await pre.screenshot({ path: path.join(ROOT, 'docs', 'top-terminal.png') });
await browser.close();
stop = true;
await feeding;
for (const f of ['top-page.png', 'top-terminal.png']) console.log(`docs/${f}: ${fs.statSync(path.join(ROOT, 'docs', f)).size} bytes`);
process.exit(0);
