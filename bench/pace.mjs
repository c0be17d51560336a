#!/usr/bin/env node
/**
 * bench:pipe's feeder at a steady rate (RATE=lines/s), in place of `cat`:
 * `node bench/pace.mjs RATE FILE...` writes the files' lines to stdout, as
 * many as are due every 2 ms, waiting for 'drain' when the reader is behind
 * (a web server writing its log at that rate). A burst (`cat`) measures how a
 * backlog is taken; a rate measures the cost per line of keeping up.
 */
import fs from 'node:fs';

const [rate, ...files] = [Number(process.argv[2]), ...process.argv.slice(3)];
const data = Buffer.concat(files.map((f) => fs.readFileSync(f)));
const ends = [];
for (let i = data.indexOf(0x0a); i >= 0; i = data.indexOf(0x0a, i + 1)) ends.push(i + 1);
const t0 = performance.now();
let sent = 0;
let off = 0;
function tick() {
  const due = Math.min(ends.length, Math.floor(((performance.now() - t0) / 1000) * rate));
  let ok = true;
  if (due > sent) {
    ok = process.stdout.write(data.subarray(off, ends[due - 1]));
    off = ends[due - 1];
    sent = due;
  }
  if (sent >= ends.length) process.stdout.end();
  else if (ok) setTimeout(tick, 2);
  else process.stdout.once('drain', tick);
}
tick();
