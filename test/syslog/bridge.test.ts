/**
 * From datagram to publisher entry: `HOST SP LINE LF`, the host from the
 * datagram or ours, the group from the tag (--route) or the pipe-mode router,
 * refused datagrams counted by reason.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/errors.js';
import { Router } from '../../src/routing.js';
import type { PreparedSend } from '../../src/spread/client.js';
import { SERVICE_BY_NAME } from '../../src/spread/constants.js';
import { MAX_DATAGRAM, SyslogBridge, parseRoutes } from '../../src/syslog/bridge.js';
import { ROOT } from '../helpers.js';

const send = { service: SERVICE_BY_NAME.reliable };
const L = (s: string): Buffer => Buffer.from(s, 'latin1');

/** Group names of a prepared send (32-byte NUL-padded fields). */
function groupsOf(p: PreparedSend | undefined): string[] | undefined {
  if (!p) return undefined;
  return Array.from({ length: p.numGroups }, (_, i) => p.groups.toString('latin1', i * 32, (i + 1) * 32).replace(/\0+$/, ''));
}

function bridge(opts: { routes?: string[]; groups?: string[]; field?: number; tag?: boolean; maxLine?: number } = {}) {
  const out: Array<{ body: string; groups: string[] | undefined }> = [];
  const b = new SyslogBridge({
    localHost: 'me',
    tag: opts.tag ?? true,
    maxLine: opts.maxLine ?? 32768,
    routes: parseRoutes(opts.routes ?? [], send),
    router: new Router({ groups: opts.groups ?? ['www'], field: opts.field, send }),
    push: (body, route) => out.push({ body: body.toString('latin1'), groups: groupsOf(route) }),
  });
  return { b, out };
}

describe('SyslogBridge', () => {
  it('publishes HOST SP LINE LF with the datagram\'s host, or ours without one', () => {
    const { b, out } = bridge();
    expect(b.handle(L('<190>Nov 23 06:42:47 web7 jigdo: 127.0.0.1 - - "GET /"'))).toBeUndefined();
    b.handle(L('<190>Nov 23 06:42:47 jigdo: 127.0.0.1 - - "GET /x"'));
    b.handle(L('<13>1 - - app - - - five424'));
    expect(out.map((o) => o.body)).toEqual(['web7 127.0.0.1 - - "GET /"\n', 'me 127.0.0.1 - - "GET /x"\n', 'me five424\n']);
    expect([b.datagrams, b.lines]).toEqual([3, 3]);
  });

  it('--no-tag publishes the line alone', () => {
    const { b, out } = bridge({ tag: false });
    b.handle(L('<190>Nov 23 06:42:47 web7 jigdo: line'));
    expect(out[0]!.body).toBe('line\n');
  });

  it('routes by tag; other tags, and datagrams without one, go to the router (-g)', () => {
    const { b, out } = bridge({ routes: ['jigdo=jigdo-logs', 'www=www', 'www=all', 'www=www'], groups: ['other'] });
    b.handle(L('<190>Nov 23 06:42:47 h jigdo: a'));
    b.handle(L('<190>Nov 23 06:42:47 h www[12]: b'));
    b.handle(L('<190>Nov 23 06:42:47 h mail: c'));
    b.handle(L('<190>Nov 23 06:42:47 h no tag here'));
    expect(out.map((o) => o.groups)).toEqual([['jigdo-logs'], ['www', 'all'], ['other'], ['other']]);
    expect(b.routedByTag).toBe(2);
  });

  it('falls back to --group-field routing of the line itself', () => {
    const { b, out } = bridge({ groups: ['fallback'], field: 1 });
    b.handle(L('<190>Nov 23 06:42:47 h t: vhost1 GET /'));
    expect(out[0]!.groups).toEqual(['vhost1']);
  });

  it('with no route and no -g the line is pushed without destinations (the publisher counts it as no-route)', () => {
    const out: Array<PreparedSend | undefined> = [];
    const b = new SyslogBridge({
      localHost: 'me',
      tag: true,
      maxLine: 100,
      routes: parseRoutes(['jigdo=j'], send),
      router: new Router({ groups: [], send }),
      push: (_b, r) => out.push(r),
    });
    b.handle(L('<190>Nov 23 06:42:47 h other: x'));
    expect(out).toEqual([undefined]);
  });

  it('cuts lines over --max-line as pipe mode does, and counts them', () => {
    const { b, out } = bridge({ maxLine: 10 });
    b.handle(L('<190>Nov 23 06:42:47 h t: 0123456789abcdef'));
    expect(out[0]!.body).toBe('h 0123456789\n');
    expect(b.truncated).toBe(1);
  });

  it('counts refused datagrams by reason and publishes nothing for them', () => {
    const { b, out } = bridge();
    const bad = ['', 'hello', '<999>x', '<13>Xyz  1 00:00:00 h t: m', '<13>Jan  1 00:00:00 ', '<13>Jan  1 00:00:00 h t: a\nb'];
    const reasons = bad.map((d) => b.handle(L(d)));
    expect(reasons).toEqual(['empty', 'no-pri', 'bad-pri', 'bad-timestamp', 'bad-header', 'binary']);
    b.handle(Buffer.alloc(MAX_DATAGRAM + 1, 0x3c));
    expect(b.bad).toMatchObject({ empty: 1, 'no-pri': 1, 'bad-pri': 1, 'bad-timestamp': 1, 'bad-header': 1, binary: 1, oversized: 1 });
    expect(b.badTotal).toBe(7);
    expect(out).toEqual([]);
  });

  it('a unix datagram of 64 KiB (what unix-dgram reads at most: maybe cut) is oversized, not published cut', () => {
    const { b } = bridge();
    const head = L('<190>Nov 23 06:42:47 h t: ');
    expect(b.handle(Buffer.concat([head, Buffer.alloc(65536 - head.length, 0x61)]))).toBe('oversized');
  });

  it('every real nginx datagram becomes the file line, prefixed with the host', () => {
    const f = JSON.parse(fs.readFileSync(path.join(ROOT, 'test/fixtures/syslog/nginx.json'), 'utf8')) as { fileLines: string[]; datagrams: string[] };
    const { b, out } = bridge({ routes: ['jigdo=jigdo'], maxLine: 65536 });
    for (const d of f.datagrams) b.handle(Buffer.from(d, 'base64'));
    const jigdo = out.filter((o) => o.groups?.[0] === 'jigdo').map((o) => o.body);
    expect(jigdo).toEqual(f.fileLines.map((l) => `vm ${l}\n`));
    // nohostname datagrams get our host.
    expect(out.filter((o) => o.body.startsWith('me ')).map((o) => o.body)).toEqual(f.fileLines.map((l) => `me ${l}\n`));
  });
});

describe('parseRoutes', () => {
  it.each(['jigdo', '=g', 'ta g=g', 'tag:x=g', 'tag=', 'tag=bad group', `tag=${'g'.repeat(40)}`])('refuses %j', (arg) => {
    let err: unknown;
    try {
      parseRoutes([arg], send);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: expect.stringMatching(new RegExp(`^(${ErrorCodes.INVALID_ARGUMENT}|${ErrorCodes.ILLEGAL_GROUP})$`)) });
  });

  it('a tag given twice sends to both groups in one message', () => {
    expect(groupsOf(parseRoutes(['a=x', 'a=y'], send).get('a'))).toEqual(['x', 'y']);
  });
});
