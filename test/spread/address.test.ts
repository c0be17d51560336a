import { describe, expect, it } from 'vitest';
import { parseDaemonAddress, validateGroupName, validatePrivateName } from '../../src/spread/address.js';
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
