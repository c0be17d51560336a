/**
 * #13: strftime fields in --write paths and RewriteTimestamp formats, and the
 * boundary at which a templated path switches file.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { PathTemplate, Strftime, StrftimeError, nextBoundary, strftime } from '../../src/write/strftime.js';

const T = Date.UTC(2026, 11, 31, 23, 59, 58, 250); // Thu 31 Dec 2026 23:59:58.250 UTC

describe('#13 strftime', () => {
  it('#13: renders the conversions as date(1) does (UTC)', () => {
    const fmt = '%Y %C %y %G %g %m %b %h %B %d %e %j %a %A %u %w %U %W %V %F %D %H %k %I %l %p %M %R %S %T %s %z %% %n|%t|';
    // GNU date implements the same strftime; compare field by field.
    const want = execFileSync('date', ['-u', '-d', '@' + Math.floor(T / 1000), '+' + fmt], { encoding: 'latin1' }).replace(/\n$/, '');
    expect(strftime(fmt, T, true)).toBe(want);
  });

  it('#13: week numbers and ISO years agree with date(1) over two years of days', () => {
    const fmt = '%G-%V %U %W %j %u';
    const days: number[] = [];
    for (let d = Date.UTC(2026, 0, 1); d < Date.UTC(2028, 0, 8); d += 86_400_000 * 3) days.push(d);
    const want = execFileSync('sh', ['-c', days.map((d) => `date -u -d @${d / 1000} '+${fmt}'`).join(';')], { encoding: 'latin1' }).trim().split('\n');
    expect(days.map((d) => strftime(fmt, d, true))).toEqual(want);
  });

  it('#13: local time follows TZ, UTC does not', () => {
    // The test process's TZ is whatever CI has; compare against date(1) in the same zone.
    const want = execFileSync('date', ['-d', '@' + Math.floor(T / 1000), '+%F %T %z'], { encoding: 'latin1' }).trim();
    expect(strftime('%F %T %z', T, false)).toBe(want);
    expect(strftime('%F %T %z', T, true)).toBe('2026-12-31 23:59:58 +0000');
  });

  it('#13: an unknown conversion or a lone % is an error, never copied into a path', () => {
    expect(() => new Strftime('/var/log/%Q.log')).toThrow(StrftimeError);
    expect(() => new Strftime('/var/log/x%')).toThrow(/lone %/);
    expect(new Strftime('/var/log/100%%.log').timed).toBe(false);
    expect(strftime('/var/log/100%%.log', T)).toBe('/var/log/100%.log');
  });

  it('#13: the finest field decides the boundary', () => {
    expect(new Strftime('%Y/%m/%d').granularity).toBe('day');
    expect(new Strftime('%Y/%m').granularity).toBe('month');
    expect(new Strftime('%F-%H').granularity).toBe('hour');
    expect(new Strftime('%s').granularity).toBe('second');
    expect(nextBoundary(T, 'day', true)).toBe(Date.UTC(2027, 0, 1));
    expect(nextBoundary(T, 'month', true)).toBe(Date.UTC(2027, 0, 1));
    expect(nextBoundary(T, 'year', true)).toBe(Date.UTC(2027, 0, 1));
    expect(nextBoundary(T, 'hour', true)).toBe(Date.UTC(2027, 0, 1));
    expect(nextBoundary(T, 'minute', true)).toBe(Date.UTC(2027, 0, 1));
    expect(nextBoundary(T, 'second', true)).toBe(T - 250 + 1000);
  });

  it('#13: a path template switches exactly at midnight and caches in between', () => {
    const p = new PathTemplate('/logs/%Y/%m/%d/access.log', true);
    expect(p.fixedDir).toBe('/logs');
    expect(p.path(T)).toBe('/logs/2026/12/31/access.log');
    expect(p.path(Date.UTC(2026, 11, 31, 23, 59, 59, 999))).toBe('/logs/2026/12/31/access.log');
    expect(p.path(Date.UTC(2027, 0, 1))).toBe('/logs/2027/01/01/access.log');
    // A clock set back gets the earlier file again, not a stale cache.
    expect(p.path(T)).toBe('/logs/2026/12/31/access.log');
    expect(new PathTemplate('/logs/access-%F.log').fixedDir).toBe('/logs');
    expect(new PathTemplate('rel.log').fixedDir).toBe('.');
  });

  it('#13: local-day boundaries land on local midnight, DST days included', () => {
    const tz = process.env.TZ;
    process.env.TZ = 'Europe/Berlin';
    try {
      // 29 Mar 2026 is 23 hours long in Berlin, 25 Oct 2026 25 hours.
      const spring = Date.UTC(2026, 2, 29, 12);
      expect(nextBoundary(spring, 'day', false) - Date.UTC(2026, 2, 29, 22)).toBe(0);
      const autumn = Date.UTC(2026, 9, 25, 12);
      expect(nextBoundary(autumn, 'day', false)).toBe(Date.UTC(2026, 9, 25, 23));
      // The hour after 01:59:59 CET on the spring day is 03:00 CEST.
      expect(strftime('%H', nextBoundary(Date.UTC(2026, 2, 29, 0, 30), 'hour', false))).toBe('03');
    } finally {
      if (tz === undefined) delete process.env.TZ;
      else process.env.TZ = tz;
    }
  });
});
