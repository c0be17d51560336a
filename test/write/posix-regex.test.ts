/** #13: Match expressions mean what they mean to spreadlogd (POSIX ERE via regcomp/regexec). */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { PosixRegexError, compileEre, matchesAny, translateEre } from '../../src/write/posix-regex.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

describe('#13 Match (POSIX ERE)', () => {
  const cases: Array<[string, string, boolean]> = [
    ['GET /jigdo', 'web1 GET /jigdo/x HTTP/1.1\n', true],
    ['^web[0-9]+ ', 'web12 GET /\n', true],
    ['^web[[:digit:]]+ ', 'webx GET /\n', false],
    ['[[:upper:]]{3}', 'web1 GET /\n', true],
    [' 404 [0-9]+$', 'web1 "GET /" 404 12\n', false], // $ is the end of the message, after the newline
    [' 404 [0-9]+.$', 'web1 "GET /" 404 12\n', true], // . matches the newline (no REG_NEWLINE)
    ['[\\.]x', 'a\\x', true], // in a bracket a backslash is itself
    ['[]a]', ']', true],
    ['[^]a]', 'a]', false],
    ['a|b{2}', 'xbb', true],
    ['\\<GET\\>', 'xGETy', false],
    ['\\<GET\\>', 'a GET b', true],
    ['\\d', 'd', true], // an unknown escape stands for its character (glibc)
    ['\\d', '5', false],
    ['(ab)\\1', 'abab', true],
    ['a/b', 'a/b', true],
    ['[a-c-]', '-', true],
  ];
  it.each(cases)('#13: %s against %j is %s', (re, text, want) => {
    expect(matchesAny([compileEre(re)], b(text))).toBe(want);
  });

  it('#13: agrees with grep -E (glibc regcomp) on the same cases', () => {
    for (const [re, text, want] of cases) {
      if (text.includes('\n') || text.includes('\\')) continue; // grep works line by line
      let got: boolean;
      try {
        execFileSync('grep', ['-qE', '--', re], { input: text });
        got = true;
      } catch {
        got = false;
      }
      expect([re, text, got]).toEqual([re, text, want]);
    }
  });

  it('#13: no Match means every message; several mean any of them', () => {
    expect(matchesAny([], b('x'))).toBe(true);
    expect(matchesAny([compileEre('^a'), compileEre('z$')], b('xyz'))).toBe(true);
    expect(matchesAny([compileEre('^a'), compileEre('q')], b('xyz'))).toBe(false);
  });

  it('#13: a bad expression is an error (spreadlogd printed it and then wrote everything)', () => {
    expect(() => compileEre('a(')).toThrow(PosixRegexError);
    expect(() => compileEre('[abc')).toThrow(/unmatched \[/);
    expect(() => compileEre('[[:nope:]]')).toThrow(/character class/);
    expect(() => compileEre('a{x}')).toThrow(/interval/);
    expect(translateEre('a.b')).toBe('a.b');
  });
});
