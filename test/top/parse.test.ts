import { describe, expect, it } from 'vitest';
import { LineParser, type LogFormat } from '../../src/top/parse.js';

function parse(line: string | Buffer, format: LogFormat = 'combined', tagged = false) {
  const p = new LineParser(format, tagged);
  const b = typeof line === 'string' ? Buffer.from(line, 'latin1') : line;
  const why = p.parse(b, 0, b.length);
  const o = p.out;
  const f = (s: number, e: number) => b.toString('latin1', s, e);
  return why
    ? { why }
    : {
        host: f(o.hostStart, o.hostEnd),
        vhost: f(o.vhostStart, o.vhostEnd),
        client: f(o.clientStart, o.clientEnd),
        url: f(o.urlStart, o.urlEnd),
        ref: f(o.refStart, o.refEnd),
        agent: f(o.agentStart, o.agentEnd),
        status: o.status,
        bytes: o.bytes,
      };
}

const APACHE = '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif?a=1 HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"';

describe('LineParser (#14)', () => {
  it('#14: combined, as Apache documents it', () => {
    expect(parse(APACHE)).toEqual({
      host: '',
      vhost: '',
      client: '127.0.0.1',
      url: '/apache_pb.gif?a=1',
      ref: 'http://www.example.com/start.html',
      agent: 'Mozilla/4.08 [en] (Win98; I ;Nav)',
      status: 200,
      bytes: 2326,
    });
  });

  it('#14: the host tag, vcombined (%v:%p first), common, CR LF endings', () => {
    expect(parse(`web7 ${APACHE}`, 'combined', true)).toMatchObject({ host: 'web7', client: '127.0.0.1' });
    expect(parse(`www.example.org:443 ${APACHE}`, 'vcombined')).toMatchObject({ vhost: 'www.example.org', client: '127.0.0.1' });
    expect(parse(`web1 [::1]:80 ${APACHE}`, 'vcombined', true)).toMatchObject({ host: 'web1', vhost: '[::1]' });
    expect(parse('::1 - - [10/Oct/2000:13:55:36 -0700] "HEAD / HTTP/1.1" 304 -\r', 'common')).toMatchObject({ client: '::1', url: '/', status: 304, bytes: 0 });
    expect(parse(`${APACHE}\r`)).toMatchObject({ agent: 'Mozilla/4.08 [en] (Win98; I ;Nav)' });
  });

  it('#14: escaped quotes inside quoted fields (Apache \\", nginx \\x22) do not end the field', () => {
    const l = '1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /a\\"b HTTP/1.1" 200 5 "-" "say \\"hi\\" \\x22x\\x22"';
    expect(parse(l)).toMatchObject({ url: '/a\\"b', agent: 'say \\"hi\\" \\x22x\\x22', ref: '-' });
  });

  it('#14: a backslash takes the byte after it: an escaped backslash before a quote does not escape the quote', () => {
    const T = '1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] ';
    // "GET /a\\\\ HTTP/1.1": the backslash is escaped, the quote after HTTP/1.1 closes.
    expect(parse(`${T}"GET /a\\\\ HTTP/1.1" 200 5 "-" "x\\\\"`)).toMatchObject({ url: '/a\\\\', agent: 'x\\\\' });
    // Three backslashes then a quote: the third escapes the quote, the field goes on.
    expect(parse(`${T}"GET /a\\\\\\"b HTTP/1.1" 200 5 "-" "x"`)).toMatchObject({ url: '/a\\\\\\"b' });
    // A field ending in an odd backslash run never closes.
    expect(parse(`${T}"GET /a HTTP/1.1" 200 5 "-" "x\\"`)).toEqual({ why: 'bad-agent' });
    expect(parse(`${T}"GET /a HTTP/1.1\\" 200 5`)).toEqual({ why: 'bad-request' });
  });

  it('#14: a request without spaces (a 400 for junk) keeps the whole request as its URL', () => {
    expect(parse('1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "-" 400 0 "-" "-"')).toMatchObject({ url: '-', status: 400 });
    expect(parse('1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /x" 400 0 "-" "-"')).toMatchObject({ url: '/x' });
  });

  it('#14: bytes that are not UTF-8 or ASCII are carried, never a crash', () => {
    const b = Buffer.concat([Buffer.from('1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /'), Buffer.from([0xff, 0x00, 0xc3]), Buffer.from(' HTTP/1.1" 200 1 "-" "a"')]);
    expect(parse(b)).toMatchObject({ url: '/\xff\x00\xc3', status: 200 });
  });

  it('#14: every malformed line gets a reason', () => {
    const good = APACHE;
    const cases: [string, string, LogFormat?, boolean?][] = [
      ['', 'empty'],
      ['nospace', 'no-host-tag', 'combined', true],
      ['webonly ', 'bad-client', 'combined', true],
      ['vhost-without-rest', 'bad-vhost', 'vcombined'],
      ['1.2.3.4', 'bad-client'],
      ['1.2.3.4 - - 10/Oct/2000:13:55:36 -0700 "GET / HTTP/1.1" 200 1', 'bad-time'],
      ['1.2.3.4 - - [10/Oct] "GET / HTTP/1.1" 200 1', 'bad-time'],
      ['1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] GET / 200 1', 'bad-request'],
      ['1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1 200 1', 'bad-request'],
      ['1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 20 1', 'bad-status'],
      ['1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 099 1', 'bad-status'],
      ['1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 x', 'bad-bytes'],
      ['1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 1', 'bad-referrer'],
      ['1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 1 -', 'bad-referrer'],
      ['1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 1 "-"', 'bad-agent'],
      ['1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 1 "-" "a', 'bad-agent'],
      [`${good}x`, 'trailing-garbage'],
      ['1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 1x', 'bad-bytes', 'common'],
    ];
    for (const [line, why, format, tagged] of cases) expect(parse(line, format ?? 'combined', tagged ?? false), line).toEqual({ why });
    // Fields appended after combined (%D, $request_time) are allowed.
    expect(parse(`${good} 1234`)).toMatchObject({ status: 200 });
  });

  it('#14: a line fed inside a larger buffer is parsed between its offsets only', () => {
    const b = Buffer.from(`xx${APACHE}\nyy`, 'latin1');
    const p = new LineParser('combined', false);
    expect(p.parse(b, 2, 2 + APACHE.length)).toBeUndefined();
    expect(b.toString('latin1', p.out.agentStart, p.out.agentEnd)).toBe('Mozilla/4.08 [en] (Win98; I ;Nav)');
  });
});
