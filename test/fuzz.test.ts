/**
 * Fuzzing in CI, bounded in time (issue 7): the decoder, the built-in
 * daemon's request handling over live sockets, and the syslog parser get
 * random and mutated real input for FUZZ_MS each (default 3000). The seed is
 * in each test's name; FUZZ_SEED=N replays a run.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLIENT_LIMITS, DAEMON_LIMITS, type DecoderLimits, MessageDecoder } from '../src/spread/decoder.js';
import { encodeAuthChoice, encodeConnectRequest, encodeJoin, encodeMessage } from '../src/spread/encode.js';
import { AGREED_MESS } from '../src/spread/constants.js';
import type { DaemonEvent } from '../src/spread/daemon.js';
import { ErrorCodes, SpreadPipeError } from '../src/errors.js';
import { SYSLOG_ERRORS, parseSyslog } from '../src/syslog/parse.js';
import { ROOT, captureFiles, connectClient, defer, loadCapture, prng, randomChunks, startDaemon, stepBytes, waitFor } from './helpers.js';

const MS = Number(process.env.FUZZ_MS ?? 3000);
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);

const captures = captureFiles().map(loadCapture);
const d2c = captures.flatMap((c) => c.steps.filter((s) => s.dir === 'd2c' && s.hex && s.hex.length < 40_000).map(stepBytes));
const c2d = captures.flatMap((c) => c.steps.filter((s) => s.dir === 'c2d' && s.hex && s.hex.length < 40_000).map(stepBytes));

type Rand = () => number;
const int = (rand: Rand, n: number): number => Math.floor(rand() * n);
const pick = <T>(rand: Rand, a: readonly T[]): T => a[int(rand, a.length)]!;

/** A real protocol unit, damaged in one of the ways a broken peer or a bit error would. */
function mutate(rand: Rand, units: readonly Buffer[]): Buffer {
  let b = Buffer.from(pick(rand, units));
  switch (int(rand, 6)) {
    case 0: // flipped bytes
      for (let k = 1 + int(rand, 6); k > 0 && b.length; k--) b[int(rand, b.length)] = int(rand, 256);
      break;
    case 1: {
      // an int32 field (type, lengths, group count, hint) set to an extreme
      const o = int(rand, Math.max(1, b.length - 3)) & ~3;
      if (o + 4 <= b.length) b.writeInt32LE(pick(rand, [0x7fffffff, -1, -0x80000000, 0, 101, 144_001, 1 << 30, int(rand, 2 ** 31)]), o);
      break;
    }
    case 2: // cut short
      b = b.subarray(0, int(rand, b.length + 1));
      break;
    case 3: // spliced with another unit
      b = Buffer.concat([b.subarray(0, int(rand, b.length + 1)), pick(rand, units).subarray(int(rand, 64))]);
      break;
    case 4: // random tail
      b = Buffer.concat([b, Buffer.from(Array.from({ length: int(rand, 200) }, () => int(rand, 256)))]);
      break;
    default: // unchanged: valid units between broken ones
  }
  return b;
}

describe(`fuzz (FUZZ_SEED=${SEED}, ${MS} ms each)`, () => {
  it('decoder: only SP_ERR_PROTOCOL, buffering within the limits, the same frames however the bytes are cut', () => {
    const rand = prng(SEED);
    const LIMITS: Required<DecoderLimits>[] = [DAEMON_LIMITS, CLIENT_LIMITS, { maxGroups: 2, maxDataLen: 500 }];
    const deadline = Date.now() + MS;
    let inputs = 0;
    for (; Date.now() < deadline; inputs++) {
      const input = Buffer.concat(Array.from({ length: 1 + int(rand, 5) }, () => mutate(rand, d2c)));
      const limits = pick(rand, LIMITS);
      const run = (chunks: Buffer[]): { frames: string[]; error?: string; max: number } => {
        const frames: string[] = [];
        const d = new MessageDecoder((f) => frames.push(`${f.type}:${f.sender}:${f.groups.join(',')}:${f.data.toString('hex')}`), limits);
        let max = 0;
        for (const c of chunks) {
          try {
            d.write(c);
          } catch (e) {
            if (!(e instanceof SpreadPipeError) || e.code !== ErrorCodes.PROTOCOL) throw new Error(`seed ${SEED} input ${inputs}: ${String(e)}`);
            return { frames, error: e.message, max };
          }
          max = Math.max(max, d.buffered);
        }
        return { frames, max };
      };
      const whole = run([input]);
      const cut = run(randomChunks(input, rand, 1 + int(rand, 200)));
      const bound = 48 + 4 + 32 * limits.maxGroups + limits.maxDataLen;
      expect(Math.max(whole.max, cut.max), `seed ${SEED} input ${inputs}`).toBeLessThanOrEqual(bound);
      expect({ ...cut, max: 0 }, `seed ${SEED} input ${inputs}`).toEqual({ ...whole, max: 0 });
    }
    expect(inputs).toBeGreaterThan(100);
  });

  it('daemon: broken clients on many connections are each closed and reported, the good ones never notice', async () => {
    const rand = prng(SEED + 1);
    const { daemon, port, spec } = await startDaemon({ handshakeTimeout: 1000 });
    const events: DaemonEvent[] = [];
    daemon.on('event', (e: DaemonEvent) => events.push(e));
    const a = await connectClient(spec, 'good1');
    const b = await connectClient(spec, 'good2');
    a.c.join('fz');
    b.c.join('fz');
    await waitFor(() => a.events.length >= 2 && b.events.length >= 1);

    let conns = 0;
    let sent = 0;
    const hostile = (n: number): Promise<void> => {
      const s = net.connect({ host: '127.0.0.1', port });
      defer(() => s.destroy());
      s.on('error', () => {});
      s.resume();
      const closed = new Promise<void>((r) => s.on('close', () => r()));
      const me = `#f${n}#localhost`;
      const hs = Buffer.concat([encodeConnectRequest({ membership: rand() < 0.5, name: `f${n}` }), encodeAuthChoice()]);
      const parts: Buffer[] = [];
      switch (int(rand, 4)) {
        case 0: // noise from the first byte
          parts.push(Buffer.from(Array.from({ length: int(rand, 2000) }, () => int(rand, 256))));
          break;
        case 1: // a damaged handshake
          parts.push(mutate(rand, [hs, ...c2d.filter((u) => u.length < 200)]));
          break;
        case 2: // a good handshake, then damaged requests (captured ones, from other senders)
          parts.push(hs, ...Array.from({ length: 1 + int(rand, 6) }, () => mutate(rand, c2d)));
          break;
        default: // a good handshake and join, then our own requests damaged
          parts.push(hs, encodeJoin(me, 'fz'), mutate(rand, [encodeMessage(AGREED_MESS, me, ['fz', 'other'], Buffer.from('x'.repeat(int(rand, 3000)))), encodeJoin(me, 'g2')]));
      }
      for (const p of randomChunks(Buffer.concat(parts), rand, 1 + int(rand, 500))) s.write(p);
      // Our side ends: whatever the daemon made of the bytes, the session must go.
      s.end();
      return closed;
    };

    const deadline = Date.now() + MS;
    while (Date.now() < deadline) {
      const batch = Array.from({ length: 25 }, () => hostile(conns++));
      for (let i = 0; i < 5; i++) a.c.multicast('fz', Buffer.from(`m${sent++}`));
      await Promise.all(batch);
    }
    // Every broken connection is gone; only the two good sessions remain.
    await waitFor(() => daemon.getStats().connections === 2, 10_000, `seed ${SEED + 1}: hostile connections closed`);
    // Each one was reported: refused in the handshake, or connected and then dropped or disconnected.
    const hostileConnects = events.filter((e) => e.type === 'connect' && !/^#good\d#/.test(e.session)).map((e) => (e as { session: string }).session);
    const rejects = events.filter((e) => e.type === 'reject').length;
    expect(rejects + hostileConnects.length, `seed ${SEED + 1}`).toBe(conns);
    // Names of our own making are unique per connection (captured ones repeat), so each is one session.
    for (const session of hostileConnects.filter((x) => /^#f\d+#/.test(x))) {
      const ends = events.filter((e) => (e.type === 'disconnect' || e.type === 'protocol-error') && e.session === session);
      expect(ends.length, `seed ${SEED + 1}: ${session}`).toBeGreaterThanOrEqual(1);
      expect(ends.filter((e) => e.type === 'protocol-error').length, `seed ${SEED + 1}: ${session} ${JSON.stringify(ends)}`).toBeLessThanOrEqual(1);
    }
    // The good clients: every message, in order, and the daemon still takes new ones.
    const mine = (): string[] =>
      b.events.flatMap((e) => (e.kind === 'data' && e.frame.sender === '#good1#localhost' ? [e.frame.data.toString()] : []));
    await waitFor(() => mine().length === sent, 10_000, 'good messages');
    expect(mine()).toEqual(Array.from({ length: sent }, (_, i) => `m${i}`));
    const late = await connectClient(spec, 'late');
    late.c.join('fz');
    await waitFor(() => late.events.length >= 1);
    expect(conns).toBeGreaterThan(50);
  }, MS + 30_000);

  it('syslog parser: a record inside the datagram or a known reason, never a throw', () => {
    const rand = prng(SEED + 2);
    const fixture = (name: string): { datagrams: string[]; unixDatagrams?: string[] } =>
      JSON.parse(fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'syslog', name), 'utf8'));
    const nginx = fixture('nginx.json');
    const real = [...nginx.datagrams, ...(nginx.unixDatagrams ?? []), ...fixture('rsyslog.json').datagrams].map((d) => Buffer.from(d, 'base64')).filter((d) => d.length < 4000);
    const heads = ['<', '<1', '<191>', '<13>1 ', '<34>Oct 11 22:14:15 ', '<190>Nov 23 06:42:47 web1 jigdo: ', '<14>1 2026-11-23T06:42:47Z h a - - [x] '].map((h) => Buffer.from(h));
    const deadline = Date.now() + MS;
    const seen = new Set<string>();
    let n = 0;
    for (; Date.now() < deadline; n++) {
      const d = rand() < 0.2 ? Buffer.concat([pick(rand, heads), mutate(rand, real).subarray(int(rand, 40))]) : mutate(rand, real);
      let r: ReturnType<typeof parseSyslog>;
      try {
        r = parseSyslog(d);
      } catch (e) {
        throw new Error(`seed ${SEED + 2}: threw on ${d.toString('hex')}: ${String(e)}`);
      }
      if (r.ok) {
        expect(r.record.message.length <= d.length && !r.record.message.includes(0x0a), `seed ${SEED + 2}: ${d.toString('hex')}`).toBe(true);
        seen.add('ok');
      } else {
        expect(SYSLOG_ERRORS, `seed ${SEED + 2}: ${d.toString('hex')}`).toContain(r.error);
        seen.add(r.error);
      }
    }
    expect(n).toBeGreaterThan(1000);
    expect(seen.has('ok')).toBe(true);
    expect(seen.size).toBeGreaterThan(3);
  });
});
