/** #13: spreadlogd.conf read with spreadlogd 2.0.1's grammar; what we cannot run is refused by line. */
import { describe, expect, it } from 'vitest';
import { ConfError, parseSpreadlogdConf } from '../../src/write/spreadlogd-conf.js';

const conf = (s: string) => parseSpreadlogdConf(s, 'test.conf');
const err = (s: string): string => {
  try {
    conf(s);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfError);
    return (e as Error).message;
  }
  throw new Error('no error');
};

describe('#13 spreadlogd.conf', () => {
  it('#13: several Spread blocks, several Log blocks, comments and quotes', () => {
    const c = conf(`# central box
BufferSize = 65536   # bigger than the default
Spread {
  Port = 4803
  Log {
    Group = jigdo
    File = /var/log/jigdo.log
    Match = "GET /jigdo"
    Match = ' 404 '
    RewriteTimestamp = CommonLogFormat
  }
  Log { Group = www VhostDir = /var/log/vhosts File = /dev/null }
}
Spread {
  Port = 4804
  Host = loghost
  Log {
    Group = pipe
    File = "|/usr/bin/logger -t web"
    RewriteTimestamp = "[%d/%b/%Y %T]"
  }
}
`);
    expect(c.bufferSize).toBe(65536);
    expect(c.spreads).toEqual([
      {
        daemon: '4803',
        line: 3,
        logs: [
          { group: 'jigdo', file: '/var/log/jigdo.log', matches: ['GET /jigdo', ' 404 '], rewrite: { kind: 'clf' }, line: 5 },
          { group: 'www', vhostDir: '/var/log/vhosts', file: '/dev/null', matches: [], line: 12 },
        ],
      },
      { daemon: '4804@loghost', line: 14, logs: [{ group: 'pipe', file: '|/usr/bin/logger -t web', matches: [], rewrite: { kind: 'format', format: '[%d/%b/%Y %T]' }, line: 17 }] },
    ]);
  });

  it('#13: Port = PORT@HOST as spreadlogd writes it; no Port means 4803', () => {
    expect(conf('Spread { Port = 4913@gollum Log { Group = g File = f } }').spreads[0]!.daemon).toBe('4913@gollum');
    expect(conf('Spread { Log { Group = g File = f } }').spreads[0]!.daemon).toBe('4803');
    expect(conf('Spread{Log{Group = g File = f}}').spreads[0]!.logs[0]!.file).toBe('f');
  });

  it('#13: PerlLog, PythonLog, LoadModule and friends are refused with their line number', () => {
    expect(err('LoadModule foo bar\nSpread { Log { Group = g File = f } }')).toBe(
      'test.conf:1: LoadModule is not supported: spread-pipe write runs no C modules; remove it (or keep spreadlogd for this log)',
    );
    expect(err('Spread {\n Log {\n  Group = g\n  PerlLog mylogger::log\n  File = f\n }\n}')).toMatch(/^test\.conf:4: PerlLog is not supported: .*Perl/);
    expect(err('Spread {\n Log {\n  Group = g\n\n  PythonLog x\n }\n}')).toMatch(/^test\.conf:5: PythonLog is not supported/);
    expect(err('PerlUse x\nSpread { Log { Group = g File = f } }')).toMatch(/^test\.conf:1: PerlUse/);
    expect(err('ModuleDir = /tmp\nSpread { Log { Group = g File = f } }')).toMatch(/^test\.conf:1: ModuleDir/);
    expect(err('Spread { Log { Group = g File = f ModuleLog foo } }')).toMatch(/:1: ModuleLog/);
  });

  it('#13: tokens as spreadlogd scans them: Group=x is one word; a keyword value must be quoted', () => {
    expect(err('Spread {\n Log {\n  Group=x\n }\n}')).toBe('test.conf:3: expected Group, File, Match, VhostDir or RewriteTimestamp in Log block, found "Group=x"');
    expect(err('Spread { Log { Group = Log File = f } }')).toMatch(/found "Log" \(a keyword: quote it\)/);
    expect(conf('Spread { Log { Group = "Log" File = f } }').spreads[0]!.logs[0]!.group).toBe('Log');
    // "CommonLogFormat" quoted is a strftime format, as in spreadlogd.
    expect(conf('Spread { Log { Group = g File = f RewriteTimestamp = "CommonLogFormat" } }').spreads[0]!.logs[0]!.rewrite).toEqual({ kind: 'format', format: 'CommonLogFormat' });
    // A # ends a word and starts a comment.
    expect(conf('Spread { Log { Group = g File = a#b }\n } }').spreads[0]!.logs[0]!.file).toBe('a');
    // Quoted strings may hold anything but their own quote, newlines too (line numbers keep counting).
    expect(err('Spread { Log { Group = g File = "a\nb" }\n oops }')).toMatch(/^test\.conf:3: expected Port, Host, Log/);
  });

  it('#13: mistakes are errors with their line, never ignored', () => {
    expect(err('')).toMatch(/^test\.conf:1: no Spread block/);
    expect(err('Spread {\n}')).toMatch(/^test\.conf:1: Spread block for 4803 has no Log block/);
    expect(err('Spread { Log { File = f } }')).toMatch(/Log block without Group/);
    expect(err('Spread { Log { Group = g } }')).toMatch(/neither File nor VhostDir/);
    expect(err('Spread { Log { Group = g File = f Group = h } }')).toMatch(/Group given twice/);
    expect(err('Spread { Log { Group = g File = f } Port = 1 }')).toMatch(/Port must come before the Log blocks/);
    expect(err('Spread { Log { Group = g File = f } }\nSpread { Log { Group = h File = f } }')).toMatch(/^test\.conf:2: a second Spread block for daemon 4803 \(the first is on line 1\)/);
    expect(err('Spread { Log { Group = g File = f } }\nBufferSize = 1')).toMatch(/BufferSize goes before the first Spread block/);
    expect(err('BufferSize = 8k\nSpread { Log { Group = g File = f } }')).toMatch(/^test\.conf:1: BufferSize must be a positive number of bytes, got "8k"/);
    expect(err('Spread { Log { Group = g File = "unterminated } }')).toMatch(/unterminated double quote/);
    expect(err('Spread { Log { Group = g File = f }')).toMatch(/found end of file/);
    expect(err('Spread { Log { Group = g VhostGroup = x File = f } }')).toMatch(/VhostGroup is not supported/);
  });
});
