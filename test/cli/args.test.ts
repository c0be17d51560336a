/**
 * #11: the one reader of every mode's command line, in-process: one value
 * per option, twice / empty / missing / stray words refused with the flag's
 * name, whole numbers and sizes checked, and only SpreadPipeErrors turned
 * into usage errors.
 */
import { describe, expect, it } from 'vitest';
import { type OptTable, parseCommandLine, parseSize, usage, wholeNumber } from '../../src/cli/args.js';
import { UsageError } from '../../src/cli/common.js';
import { OptionError } from '../../src/options.js';
import { ErrorCodes, SpreadPipeError } from '../../src/errors.js';
import { parseArgs as parsePipe } from '../../src/cli/pipe.js';
import { parseArgs as parseTail } from '../../src/cli/tail.js';
import { parseArgs as parseDaemon } from '../../src/cli/daemon.js';

const T: OptTable = {
  group: { alias: 'g', type: 'string', repeat: true, describe: 'g' },
  timeout: { type: 'string', field: 'connectTimeout', describe: 't' },
  prefix: { type: 'string', empty: true, describe: 'p' },
  flag: { type: 'boolean', describe: 'f' },
};
const HELP = { scriptName: 'x', usage: 'x', epilogue: '' };
const parse = (args: string[]) => parseCommandLine(args, T, HELP);

describe('#11: parseCommandLine', () => {
  it('#11: a repeatable option is given once per value, in order', async () => {
    const g = (await parse(['-g', 'a', '--group', 'b', '-g', 'c']))!;
    expect(g.list('group')).toEqual(['a', 'b', 'c']);
    expect(g.str('timeout')).toBeUndefined();
    expect((await parse(['--prefix', '']))!.str('prefix')).toBe('');
  });

  it.each([
    [['-g', 'a', 'oops'], /^unexpected argument "oops" after "-g a"/],
    [['--timeout', '1', '--timeout', '2'], /^--timeout given twice \("1" and "2"\)/],
    [['--timeout'], /^--timeout needs a value$/],
    [['-g'], /^-g\/--group needs a value$/],
    [['-g', ''], /^-g\/--group needs a value, got an empty string$/],
    [['--nope'], /^unknown option "--nope"/],
    [['--flag', 'oops'], /^unexpected argument "oops" after "--flag"/],
    [['--flag=x'], /^--flag is a switch and takes no value, got "--flag=x"$/],
    [['--no-flag=0'], /^--flag is a switch and takes no value, got "--no-flag=0"$/],
  ])('#11: %j is a usage error', async (args, msg) => {
    const e = await parse(args as string[]).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(UsageError);
    expect((e as Error).message).toMatch(msg);
  });

  it('#11: whole numbers and sizes, never NaN', () => {
    expect(wholeNumber('250', '--t', 'milliseconds')).toBe(250);
    for (const bad of ['abc', '', '1.5', '-1', '1e3']) expect(() => wholeNumber(bad, '--t', 'milliseconds')).toThrow(`--t: expected a whole number of milliseconds, got ${JSON.stringify(bad)}`);
    expect(parseSize('64k', '--s')).toBe(65536);
    expect(parseSize('32M', '--s')).toBe(32 * 1024 ** 2);
    expect(parseSize('1GiB', '--s')).toBe(1024 ** 3);
    expect(() => parseSize('lots', '--s')).toThrow(/--s: expected a size in bytes like 65536, 64k, 32M or 1G, got "lots"/);
  });

  it('#11: usage() names the flag of an OptionError, passes SpreadPipeErrors as usage errors, and lets a bug through as a crash', () => {
    expect(() => usage(T, () => {
      throw new OptionError('connectTimeout', 'must be at least 1 millisecond, got 0');
    })).toThrow(new UsageError('--timeout: must be at least 1 millisecond, got 0'));
    const e = (() => {
      try {
        usage(T, () => {
          throw new SpreadPipeError(ErrorCodes.ILLEGAL_GROUP, 'bad group name "x y"');
        }, '-g/--group');
      } catch (x) {
        return x;
      }
    })();
    expect(e).toBeInstanceOf(UsageError);
    expect((e as Error).message).toBe('-g/--group: bad group name "x y"');
    expect(() => usage(T, () => {
      throw new TypeError('a bug');
    })).toThrow(TypeError);
  });
});

describe('#11: parseArgs of each mode', () => {
  it('#11: pipe mode: defaults from the constants; --on-full left unset when not given', async () => {
    const c = (await parsePipe(['-g', 'jigdo', '-s', '4803@loghost', '-h', 'web1']))!;
    expect(c.publisher.daemons).toEqual([{ kind: 'tcp', host: 'loghost', port: 4803, label: '4803@loghost' }]);
    expect(c.publisher.connectTimeout).toBe(3000);
    expect(c.onFull).toBeUndefined();
    expect(c.defaultDaemon).toBe(false);
    expect(c.tag.toString()).toBe('web1 ');
    const d = (await parsePipe(['-g', 'jigdo', '--on-full', 'drop-oldest']))!;
    expect(d.onFull).toBe('drop-oldest');
    expect(d.defaultDaemon).toBe(true);
    expect(d.publisher.daemons[0]).toMatchObject({ kind: 'unix', path: '/tmp/4803' });
    const groups = Array.from({ length: 100 }, (_, i) => ['-g', `g${i}`]).flat();
    expect((await parsePipe(groups))!.router.groups).toHaveLength(100);
  });

  it('#11: tail and the daemon', async () => {
    const t = (await parseTail(['-g', 'a', '-g', 'b', '--count', '3']))!;
    expect(t).toMatchObject({ groups: ['a', 'b'], count: 3, defaultDaemon: true });
    expect(t.client.connectTimeout).toBe(3000);
    const d = (await parseDaemon(['--listen', '127.0.0.1:0', '--listen', '/run/x.sock', '--allow', '10.0.0.0/8', '-w', 'g=/var/log/g.log']))!;
    expect(d.daemon.listen).toEqual([{ host: '127.0.0.1', port: 0 }, { path: '/run/x.sock' }]);
    expect(d.writes).toEqual([['g', '/var/log/g.log']]);
    expect((await parseDaemon([]))!.daemon.listen).toEqual([{ port: 4803 }]);
  });
});
