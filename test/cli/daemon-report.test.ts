/**
 * The daemon's stderr lines under a flood (#11 defect 12): refused
 * connections and dropped sessions are counted per cause per interval after
 * the first of each, connects and disconnects after a burst.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DaemonReport } from '../../src/cli/daemon-report.js';
import type { DaemonEvent, RejectCause } from '../../src/spread/daemon.js';

const reject = (cause: RejectCause, n: number): DaemonEvent => ({ type: 'reject', remote: `127.0.0.1:${40000 + n}`, code: cause === 'not-allowed' ? -9 : 0, reason: `why ${n}`, cause });
const connect = (n: number): DaemonEvent => ({ type: 'connect', session: `#p${n}#d`, remote: `127.0.0.1:${50000 + n}`, library: '5.0.1', membership: false });

describe('DaemonReport', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('#11: 50 refused connections make 1 line at once and 1 count line per interval, per cause', () => {
    const out: string[] = [];
    const r = new DaemonReport((l) => out.push(l), 10_000);
    for (let i = 0; i < 49; i++) r.event(reject('handshake-timeout', i));
    for (let i = 0; i < 3; i++) r.event(reject('not-allowed', i));
    expect(out).toEqual(['refused 127.0.0.1:40000: why 0', 'refused 127.0.0.1:40000: REJECT_AUTH why 0']);
    vi.advanceTimersByTime(10_000);
    expect(out.slice(2)).toEqual(['refused connections in the last 10 s: handshake-timeout=48 not-allowed=2 (last: refused 127.0.0.1:40002: REJECT_AUTH why 2)']);
    // The flood goes on: only counts, even for a cause new in this interval.
    for (let i = 0; i < 100; i++) r.event(reject(i % 2 ? 'hung-up' : 'handshake-timeout', i));
    vi.advanceTimersByTime(10_000);
    expect(out.slice(3)).toEqual(['refused connections in the last 10 s: handshake-timeout=50 hung-up=50 (last: refused 127.0.0.1:40099: why 99)']);
    // A quiet interval ends the flood: the next refusal is printed at once again.
    vi.advanceTimersByTime(10_000);
    expect(out).toHaveLength(4);
    r.event(reject('quota', 7));
    expect(out.slice(4)).toEqual(['refused 127.0.0.1:40007: why 7']);
    vi.advanceTimersByTime(30_000);
    expect(out).toHaveLength(5);
  });

  it('#11: connects of real sessions: one line each up to the burst, then counted; refusals do not hide them', () => {
    const out: string[] = [];
    const r = new DaemonReport((l) => out.push(l), 1000, 5);
    for (let i = 0; i < 20; i++) r.event(reject('not-spread', i));
    for (let i = 0; i < 12; i++) r.event(connect(i));
    r.event({ type: 'disconnect', session: '#p0#d', reason: 'connection closed by client', graceful: true });
    expect(out.filter((l) => l.startsWith('connect '))).toHaveLength(5);
    expect(out.filter((l) => l.startsWith('refused '))).toHaveLength(1);
    r.event({ type: 'protocol-error', session: '#p1#d', reason: 'bad length' });
    r.event({ type: 'protocol-error', session: '#p2#d', reason: 'bad length' });
    expect(out.at(-1)).toBe('dropped #p1#d: bad length');
    vi.advanceTimersByTime(1000);
    expect(out.slice(-3).sort()).toEqual([
      'dropped sessions in the last 1.0 s: protocol-error=1 (last: dropped #p2#d: bad length)',
      'refused connections in the last 1.0 s: not-spread=19 (last: refused 127.0.0.1:40019: why 19)',
      'session lines not shown in the last 1.0 s: connect=7 disconnect=1 (last: disconnect #p0#d: connection closed by client)',
    ]);
    expect(out).toHaveLength(6 + 1 + 3);
  });

  it('#11: flush() prints what is held back at once (exit)', () => {
    const out: string[] = [];
    const r = new DaemonReport((l) => out.push(l), 10_000);
    r.event(reject('hung-up', 1));
    r.event(reject('hung-up', 2));
    vi.advanceTimersByTime(2500);
    r.flush();
    expect(out).toEqual(['refused 127.0.0.1:40001: why 1', 'refused connections in the last 2.5 s: hung-up=1 (last: refused 127.0.0.1:40002: why 2)']);
    r.flush();
    expect(out).toHaveLength(2);
  });

  it('#15: forged host tags and TLS refusals: the first of each cause in full, the rest counted; a SIGHUP reload is one line', () => {
    const out: string[] = [];
    const r = new DaemonReport((l) => out.push(l), 10_000);
    for (let i = 0; i < 30; i++) r.event({ type: 'forged-tag', session: `#p${i}#d`, tag: 'web2', names: ['web1'] });
    for (let i = 0; i < 5; i++) r.event(reject('plaintext-on-tls', i));
    for (let i = 0; i < 5; i++) r.event(reject('tls-busy', i));
    expect(out).toEqual([
      'refused a message of #p0#d: host tag "web2" is not named by its client certificate (web1)',
      'refused 127.0.0.1:40000: why 0',
      'refused 127.0.0.1:40000: why 0',
    ]);
    vi.advanceTimersByTime(10_000);
    expect(out.slice(3)).toEqual(['refused connections in the last 10 s: forged-tag=29 plaintext-on-tls=4 tls-busy=4 (last: refused 127.0.0.1:40004: why 4)']);
    r.event({ type: 'tls-reload', files: 'a.pem, a.key' });
    r.event({ type: 'tls-reload', files: 'a.pem, a.key', error: 'TLS key a.key: not a PEM file (no -----BEGIN line)' });
    expect(out.slice(4)).toEqual(['SIGHUP: reloaded TLS files a.pem, a.key', 'SIGHUP: cannot reload TLS files, keeping the old ones: TLS key a.key: not a PEM file (no -----BEGIN line)']);
  });
});
