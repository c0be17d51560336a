import { describe, expect, it } from 'vitest';
import { parseDaemonAddress, parseListenAddress, parseSyslogSpec, validateGroupName, validatePrivateName } from '../../src/spread/address.js';
import { ErrorCodes, SpreadPipeError } from '../../src/errors.js';

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as SpreadPipeError).code;
  }
  return undefined;
}

describe('parseDaemonAddress', () => {
  it.each([
    ['4803', { kind: 'unix', path: '/tmp/4803' }],
    ['', { kind: 'unix', path: '/tmp/4803' }],
    ['4803@loghost', { kind: 'tcp', host: 'loghost', port: 4803 }],
    ['4803@127.0.0.1', { kind: 'tcp', host: '127.0.0.1', port: 4803 }],
    ['4803@::1', { kind: 'tcp', host: '::1', port: 4803 }],
    ['4803@[::1]', { kind: 'tcp', host: '::1', port: 4803 }],
    ['loghost:4804', { kind: 'tcp', host: 'loghost', port: 4804 }],
    ['[::1]:4803', { kind: 'tcp', host: '::1', port: 4803 }],
    ['/run/spread.sock', { kind: 'unix', path: '/run/spread.sock' }],
  ])('%s', (spec, want) => {
    expect(parseDaemonAddress(spec)).toMatchObject(want);
  });

  it.each(['abc', '70000', '4803@', '@host', '4803@bad host', 'host:', 'x:y:z', '0', '4803@a:b'])('rejects %j', (spec) => {
    expect(code(() => parseDaemonAddress(spec))).toBe(ErrorCodes.ILLEGAL_SPREAD);
  });
});

describe('name validation', () => {
  it('accepts 1..31 legal characters in a group name', () => {
    expect(validateGroupName('jigdo')).toBe('jigdo');
    expect(validateGroupName('x'.repeat(31))).toBe('x'.repeat(31));
  });
  it.each(['', 'a b', 'a#b', 'x'.repeat(32), 'caf\u00e9', 'tab\t'])('rejects group %j', (g) => {
    expect(code(() => validateGroupName(g))).toBe(ErrorCodes.ILLEGAL_GROUP);
  });
  it.each(['', 'eleven_char', 'a#', 'a b'])('rejects private name %j', (n) => {
    expect(code(() => validatePrivateName(n))).toBe(ErrorCodes.ILLEGAL_NAME);
  });
});

describe('#11: one module for every address form', () => {
  it('#11: --listen: PORT, HOST:PORT, [v6]:PORT, /unix/path', () => {
    expect(parseListenAddress('4803')).toEqual({ port: 4803 });
    expect(parseListenAddress('0')).toEqual({ port: 0 });
    expect(parseListenAddress('127.0.0.1:4803')).toEqual({ host: '127.0.0.1', port: 4803 });
    expect(parseListenAddress('[::1]:4803')).toEqual({ host: '::1', port: 4803 });
    expect(parseListenAddress('/run/spread.sock')).toEqual({ path: '/run/spread.sock' });
    for (const bad of ['', 'x', 'host:port', '70000', '1.2.3.4:', 'a b:1', `/${'x'.repeat(120)}`]) {
      expect(() => parseListenAddress(bad)).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT, message: expect.stringMatching(/^bad listen address/) }));
    }
  });

  it('#11: --syslog: udp://HOST:PORT and unix:/path', () => {
    expect(parseSyslogSpec('udp://127.0.0.1:5514')).toMatchObject({ kind: 'udp', host: '127.0.0.1', port: 5514 });
    expect(parseSyslogSpec('unix:/run/x.sock')).toMatchObject({ kind: 'unix', path: '/run/x.sock' });
    for (const bad of ['tcp://1.2.3.4:5', 'udp://1.2.3.4:70000', 'udp://name.example:514', 'unix:relative']) {
      expect(() => parseSyslogSpec(bad)).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT, message: expect.stringMatching(/^bad syslog address/) }));
    }
  });

  it('#11: a bad group name is explained in words', () => {
    expect(() => validateGroupName('in words')).toThrow('bad group name "in words": a space is not allowed: names are letters, digits and punctuation from the ASCII range');
    expect(() => validateGroupName('a#b')).toThrow(/the character '#' is not allowed/);
    expect(() => validateGroupName('tab\there')).toThrow(/control character 0x09 is not allowed/);
    expect(() => validateGroupName('café')).toThrow(/"é" is not allowed: names are ASCII/);
    expect(() => validateGroupName('x'.repeat(32))).toThrow(/32 characters, at most 31 are allowed/);
  });
});
