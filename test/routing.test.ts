import { describe, expect, it } from 'vitest';
import { Router, field } from '../src/routing.js';
import { fnv1a } from '../src/fnv1a.js';
import { decodeOne } from './spread/util.js';

const names = (r: Router, line: string): string[] | undefined => {
  const p = r.route(Buffer.from(line));
  return p ? decodeOne(p) : undefined;
};

describe('Router', () => {
  it('sends to the static groups', () => {
    expect(names(new Router({ groups: ['a', 'b'], send: {} }), 'x')).toEqual(['a', 'b']);
  });

  it('routes by a field with a prefix, falling back to -g when the field is missing or illegal', () => {
    const r = new Router({ groups: ['other'], field: 1, prefix: 'www-', send: {} });
    expect(names(r, 'example.org 1.2.3.4 - - [x]')).toEqual(['www-example.org']);
    expect(names(r, '   ')).toEqual(['other']);
    expect(names(r, 'bad#host x')).toEqual(['other']);
    expect(r.fallbacks).toBe(2);
  });

  it('hashes the field into PREFIX-N buckets, stably', () => {
    const r = new Router({ groups: [], field: 2, prefix: 'logs', hashBuckets: 8, send: {} });
    const g = names(r, '1.2.3.4 example.org GET /')!;
    expect(g).toEqual([`logs-${fnv1a(Buffer.from('example.org')) % 8}`]);
    expect(names(r, '5.6.7.8 example.org POST /x')).toEqual(g);
    expect(new Router({ groups: [], field: 9, send: {} }).route(Buffer.from('a b'))).toBeUndefined();
  });

  it('splits fields on spaces and tabs', () => {
    expect(field(Buffer.from(' a\t b  c'), 3)!.toString()).toBe('c');
    expect(field(Buffer.from('a b'), 3)).toBeUndefined();
  });

  it('fnv1a matches the published test vectors', () => {
    expect(fnv1a(Buffer.from(''))).toBe(0x811c9dc5);
    expect(fnv1a(Buffer.from('a'))).toBe(0xe40c292c);
    expect(fnv1a(Buffer.from('foobar'))).toBe(0xbf9cf968);
  });
});
