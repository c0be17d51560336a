/**
 * The syslog parser against real datagrams (test/fixtures/syslog/, recorded
 * by scripts/capture-syslog.mjs from Debian's nginx and rsyslog/logger), and
 * against every kind of bad datagram: each gets its reason, none throws.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_DATAGRAM, type ParseResult, SYSLOG_ERRORS, type SyslogRecord, parseSyslog } from '../../src/syslog/parse.js';
import { ROOT } from '../helpers.js';

interface NginxFixture {
  fileLines: string[];
  datagrams: string[];
  unixDatagrams: string[];
}
const fixture = <T>(name: string): T => JSON.parse(fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'syslog', name), 'utf8')) as T;
const nginx = fixture<NginxFixture>('nginx.json');
const rsyslog = fixture<{ datagrams: string[] }>('rsyslog.json');
const b64 = (s: string): Buffer => Buffer.from(s, 'base64');
const L = (s: string): Buffer => Buffer.from(s, 'latin1');

function record(d: Buffer | string): SyslogRecord {
  const r = parseSyslog(typeof d === 'string' ? L(d) : d);
  if (!r.ok) throw new Error(`refused (${r.error}): ${JSON.stringify(d.toString().slice(0, 80))}`);
  return r.record;
}

const reason = (d: Buffer | string): string | undefined => {
  const r = parseSyslog(typeof d === 'string' ? L(d) : d);
  return r.ok ? undefined : r.error;
};

describe('nginx datagrams (RFC 3164 as nginx writes it)', () => {
  const parsed = [...nginx.datagrams.map(b64), ...nginx.unixDatagrams.map(b64)].map((d) => ({ d, r: record(d) }));

  it('the fixture has one datagram per request and access_log', () => {
    expect(nginx.fileLines.length).toBeGreaterThanOrEqual(5);
    expect(nginx.datagrams).toHaveLength(3 * nginx.fileLines.length);
    expect(nginx.unixDatagrams).toHaveLength(nginx.fileLines.length);
  });

  it.each(['jigdo', 'nohost', 'local0', 'viaunix'])('tag=%s: every message is byte-exact the line nginx wrote to its file', (tag) => {
    const mine = parsed.filter((p) => p.r.tag === tag);
    expect(mine.map((p) => p.r.message.toString('latin1'))).toEqual(nginx.fileLines);
  });

  it('reads the host field, and its absence with nohostname', () => {
    for (const { r } of parsed) {
      expect(r.format).toBe('3164');
      if (r.tag === 'nohost') expect(r.host).toBeUndefined();
      else expect(r.host).toBe('vm');
    }
  });

  it('decodes facility and severity (default local7.info; facility=local0,severity=notice)', () => {
    for (const { r } of parsed) {
      if (r.tag === 'local0') expect([r.facility, r.severity]).toEqual([16, 5]);
      else expect([r.facility, r.severity]).toEqual([23, 6]);
    }
  });

  it('takes a 40 KB line whole: nginx neither cuts nor splits it', () => {
    const long = parsed.filter((p) => p.r.message.length > 40_000);
    expect(long).toHaveLength(4);
    for (const { r } of long) expect(r.message.toString('latin1')).toBe(nginx.fileLines.find((l) => l.length > 40_000));
  });

  it('the message is a view of the datagram, not a copy', () => {
    const { d, r } = parsed[0]!;
    expect(r.message.buffer).toBe(d.buffer);
  });
});

describe('rsyslog and logger datagrams', () => {
  const recs = rsyslog.datagrams.map((d) => record(b64(d)));
  const access = '127.0.0.1 - - [23/Nov/2026:06:00:00 +0000] "GET / HTTP/1.1" 200 3 "-" "curl"';

  it('RFC 5424 from rsyslog (SyslogProtocol23Format): structured data skipped, trailing LF removed', () => {
    const r = recs[0]!;
    expect(r).toMatchObject({ format: '5424', host: 'vm', tag: 'jigdo', facility: 1, severity: 5 });
    expect(r.message.toString('latin1')).toBe(access);
  });

  it('RFC 5424 from logger --rfc5424 with an escaped ] in a structured-data value', () => {
    expect(recs[3]).toMatchObject({ format: '5424', host: 'vm', tag: 'jigdo' });
    expect(recs[3]!.message.toString('latin1')).toBe(access);
    expect(recs[7]).toMatchObject({ format: '5424', tag: 'app' });
    expect(recs[7]!.message.toString('latin1')).toBe('plain message with ] bracket');
  });

  it('rsyslog TraditionalForwardFormat of a 5424 input has no colon after the tag: "HOST MSG"', () => {
    expect(recs[1]).toMatchObject({ format: '3164', host: 'vm', tag: undefined });
    expect(recs[1]!.message.toString('latin1')).toBe(`jigdo ${access}`);
  });

  it('rsyslog ForwardFormat: an RFC 3339 timestamp in a 3164 header', () => {
    expect(recs[2]).toMatchObject({ format: '3164', host: 'vm' });
    expect(recs[6]!.message.toString('latin1')).toBe('app plain message with ] bracket');
  });
});

describe('headers written by hand', () => {
  it('nohostname: "TAG: MSG", with or without [pid]', () => {
    expect(record('<190>Jan  5 01:02:03 jigdo: GET /')).toMatchObject({ host: undefined, tag: 'jigdo' });
    const r = record('<13>Dec 31 23:59:60 web1 app[1234]: hello: world');
    expect(r).toMatchObject({ host: 'web1', tag: 'app', facility: 1, severity: 5 });
    expect(r.message.toString()).toBe('hello: world');
  });

  it('a zero-padded day is accepted as well as nginx\'s space-padded one', () => {
    expect(record('<190>Jan 05 01:02:03 h t: x').host).toBe('h');
  });

  it('keeps the message bytes as sent: high bytes, tabs, trailing spaces; only one trailing LF or CRLF goes', () => {
    const msg = Buffer.concat([L('<190>Feb 28 12:00:00 h t: '), Buffer.from([0xc3, 0xa9, 0x09, 0x20, 0x20])]);
    expect([...record(msg).message]).toEqual([0xc3, 0xa9, 0x09, 0x20, 0x20]);
    expect(record('<190>Feb 28 12:00:00 h t: a\r\n').message.toString()).toBe('a');
    expect(record('<190>Feb 28 12:00:00 h t: a\n').message.toString()).toBe('a');
  });

  it('an empty message after the tag is an empty line', () => {
    expect(record('<190>Feb 28 12:00:00 h t: ').message.length).toBe(0);
  });

  it('RFC 5424 with every field nil, and with a BOM', () => {
    expect(record('<0>1 - - - - - -')).toMatchObject({ host: undefined, tag: undefined, facility: 0, severity: 0, format: '5424' });
    expect(record('<0>1 - - - - - -').message.length).toBe(0);
    const bom = Buffer.concat([L('<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 - '), Buffer.from([0xef, 0xbb, 0xbf]), L('An application event')]);
    expect(record(bom)).toMatchObject({ host: 'mymachine.example.com', tag: 'evntslog', facility: 20, severity: 5 });
    expect(record(bom).message.toString()).toBe('An application event');
  });

  it('RFC 5424 examples from the RFC (section 6.5)', () => {
    const r = record('<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It\'s time to make the do-nuts.');
    expect(r).toMatchObject({ host: '192.0.2.1', tag: 'myproc' });
    expect(r.message.toString()).toBe("%% It's time to make the do-nuts.");
    const sd = record('<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]');
    expect(sd.message.length).toBe(0);
  });
});

describe('bad datagrams: a reason each, never an exception', () => {
  const cases: Array<[string, Buffer | string]> = [
    ['empty', ''],
    ['no-pri', 'GET / HTTP/1.1 200'],
    ['no-pri', 'Jan  5 01:02:03 host tag: msg'],
    ['binary', Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])], // a TLS ClientHello sent to the port
    ['binary', Buffer.from([0x1f, 0x8b, 0x08, 0x00])], // gzip (a GELF sender)
    ['binary', '<190>Jan  5 01:02:03 h t: a\x00b'],
    ['binary', '<190>Jan  5 01:02:03 h t: line one\nline two'],
    ['binary', '<190>Jan  5 01:02:03 h t: a\rb'],
    ['binary', '<13>1 - h app - - - a\nforged-host b'],
    ['bad-pri', '<>Jan  5 01:02:03 h t: m'],
    ['bad-pri', '<192>Jan  5 01:02:03 h t: m'],
    ['bad-pri', '<1a>Jan  5 01:02:03 h t: m'],
    ['bad-pri', '<1234>Jan  5 01:02:03 h t: m'],
    ['bad-pri', '<13'],
    ['bad-timestamp', '<13>Foo  5 01:02:03 h t: m'],
    ['bad-timestamp', '<13>Jan 32 01:02:03 h t: m'],
    ['bad-timestamp', '<13>Jan  0 01:02:03 h t: m'],
    ['bad-timestamp', '<13>Jan  5 24:02:03 h t: m'],
    ['bad-timestamp', '<13>Jan  5 01:60:03 h t: m'],
    ['bad-timestamp', '<13>Jan  5 01:02:03'],
    ['bad-timestamp', '<13>just some text here and there'],
    ['bad-timestamp', '<13>2026-13-01T00:00:00Z h t: m'],
    ['bad-timestamp', '<13>1 2026-11-23 h app - - - m'],
    ['bad-timestamp', '<13>1 2026-11-23T25:00:00Z h app - - - m'],
    ['bad-header', '<13>Jan  5 01:02:03 '],
    ['bad-header', '<13>Jan  5 01:02:03 hostonly'],
    ['bad-header', '<13>1 - h app'],
    ['bad-header', '<13>1 - h app - - [unterminated x="y"'],
    ['bad-header', '<13>1 - h app - - x'],
    ['bad-header', '<13>1 - h app - -m'],
    ['bad-header', `<13>1 - h ${'a'.repeat(49)} - - - m`],
    ['bad-header', `<13>1 - ${'h'.repeat(256)} app - - - m`],
  ];

  it.each(cases)('%s: %j', (why, d) => {
    expect(reason(d)).toBe(why);
  });

  it('oversized: over the caller\'s limit, by default what one UDP datagram can carry', () => {
    const head = '<190>Jan  5 01:02:03 h t: ';
    expect(reason(head + 'x'.repeat(DEFAULT_MAX_DATAGRAM - head.length))).toBeUndefined();
    expect(reason(head + 'x'.repeat(DEFAULT_MAX_DATAGRAM - head.length + 1))).toBe('oversized');
    expect(parseSyslog(L(head + 'xx'), head.length + 1)).toEqual({ ok: false, error: 'oversized' });
  });

  it('random bytes and mangled real datagrams: only known reasons or records', () => {
    // Deterministic xorshift: a failure can be replayed.
    let s = 0x9e3779b9;
    const rnd = (n: number): number => {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      return (s >>> 0) % n;
    };
    const seeds = [...nginx.datagrams.slice(0, 12), ...rsyslog.datagrams].map(b64);
    const seen = new Set<string>();
    const bad: string[] = [];
    for (let i = 0; i < 10_000; i++) {
      let d: Buffer;
      if (i % 2 === 0) {
        d = Buffer.alloc(rnd(300));
        for (let j = 0; j < d.length; j++) d[j] = rnd(256);
        if (i % 4 === 0 && d.length) d[0] = 0x3c;
      } else {
        d = Buffer.from(seeds[rnd(seeds.length)]!.subarray(0, 400));
        for (let k = rnd(4); k >= 0; k--) d[rnd(d.length)] = rnd(256);
        if (rnd(3) === 0) d = d.subarray(0, rnd(d.length));
      }
      let r: ParseResult;
      try {
        r = parseSyslog(d);
      } catch (e) {
        throw new Error(`threw on ${d.toString('hex')}: ${String(e)}`);
      }
      if (r.ok) {
        // The message always lies inside the datagram and is one clean line.
        if (r.record.message.length > d.length || r.record.message.includes(0x0a)) bad.push(d.toString('hex'));
        seen.add('ok');
      } else {
        if (!SYSLOG_ERRORS.includes(r.error)) bad.push(d.toString('hex'));
        seen.add(r.error);
      }
    }
    expect(bad).toEqual([]);
    expect(seen.has('ok')).toBe(true);
    expect(seen.size).toBeGreaterThan(4);
  });
});
