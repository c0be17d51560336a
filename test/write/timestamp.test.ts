/** #13: RewriteTimestamp, CommonLogFormat and user formats (spreadlogd's force_local_time). */
import { describe, expect, it } from 'vitest';
import { TimestampRewriter, clfTime } from '../../src/write/timestamp.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const NOW = Date.UTC(2026, 11, 1, 8, 30, 5, 700);

describe('#13 RewriteTimestamp', () => {
  it('#13: CommonLogFormat replaces the first [...] with the time of receipt', () => {
    const r = new TimestampRewriter({ kind: 'clf' }, true);
    const line = b('web1 1.2.3.4 - - [30/Nov/2026:23:59:00 -0700] "GET /a [x] HTTP/1.1" 200 5\n');
    expect(r.rewrite(line, NOW).toString('latin1')).toBe('web1 1.2.3.4 - - [01/Dec/2026:08:30:05 +0000] "GET /a [x] HTTP/1.1" 200 5\n');
  });

  it('#13: the zone is the writer\'s local offset', () => {
    const tz = process.env.TZ;
    process.env.TZ = 'America/New_York';
    try {
      expect(clfTime(NOW)).toBe('[01/Dec/2026:03:30:05 -0500]');
    } finally {
      if (tz === undefined) delete process.env.TZ;
      else process.env.TZ = tz;
    }
  });

  it('#13: a user format replaces the brackets too, so it writes its own', () => {
    const r = new TimestampRewriter({ kind: 'format', format: '<%Y-%m-%dT%H:%M:%S>' }, true);
    expect(r.rewrite(b('h [old] rest'), NOW).toString()).toBe('h <2026-12-01T08:30:05> rest');
  });

  it('#13: no [ or no ] after it leaves the message as it is (same Buffer)', () => {
    const r = new TimestampRewriter({ kind: 'clf' }, true);
    const a = b('no stamp here\n');
    const c = b('half ] open [ only\n');
    expect(r.rewrite(a, NOW)).toBe(a);
    expect(r.rewrite(c, NOW)).toBe(c);
    expect(r.rewrite(b('[]'), NOW).toString()).toBe('[01/Dec/2026:08:30:05 +0000]');
  });

  it('#13: the result is cut at the buffer size, as spreadlogd cuts it', () => {
    const r = new TimestampRewriter({ kind: 'clf' }, true, 20);
    expect(r.rewrite(b('ab [x] cdefghijklmnop'), NOW).toString()).toBe('ab [01/Dec/2026:08:3');
  });

  it('#13: the stamp follows the clock second by second', () => {
    const r = new TimestampRewriter({ kind: 'clf' }, true);
    expect(r.rewrite(b('[x]'), NOW).toString()).toBe('[01/Dec/2026:08:30:05 +0000]');
    expect(r.rewrite(b('[x]'), NOW + 300).toString()).toBe('[01/Dec/2026:08:30:06 +0000]');
  });
});
