/**
 * `--spreadlogd-conf FILE`: an existing spreadlogd.conf (spreadlogd 2.0.1's
 * grammar, config_gram.l / config_gram.y), read into plain data:
 *
 *   BufferSize = 65536
 *   Spread {
 *     Port = 4803@loghost        # or Port = 4803 and Host = loghost
 *     Log {
 *       Group = jigdo
 *       File = /var/log/jigdo.log          # or File = "|/usr/bin/rotatelogs ..."
 *       Match = "GET /jigdo"               # any number; written when any matches
 *       VhostDir = /var/log/vhosts         # file per first word, word removed
 *       RewriteTimestamp = CommonLogFormat # or a strftime format
 *     }
 *   }
 *
 * Tokens as spreadlogd's flex scanner makes them: `#` to the end of the line
 * is a comment; a word is a run of anything but blanks, newlines, `#`, `{`
 * and `}` (so `Group=x` is ONE word, as in spreadlogd, and an error); "..."
 * and '...' quote without escapes; keywords are case-sensitive and a value
 * that is a keyword (`Group = Log`) must be quoted. Several `Spread` blocks
 * mean several daemons, each with its own session.
 *
 * What spreadlogd can load and we cannot run (Perl, Python, C modules) is
 * refused with its line number, never ignored: a log the admin configured
 * would silently stop being written.
 */
import fs from 'node:fs';
import { DEFAULT_SPREAD_PORT } from '../spread/constants.js';

/** spreadlogd's default receive buffer (`-b`, BufferSize): larger messages are dropped. @default 8192 */
export const SPREADLOGD_BUFFER_SIZE = 8192;

export interface ConfLog {
  group: string;
  /** Path, or `|command` for a piped log. Next to VhostDir it is not written (spreadlogd requires it there and ignores it). */
  file?: string;
  vhostDir?: string;
  matches: string[];
  rewrite?: { kind: 'clf' } | { kind: 'format'; format: string };
  /** Line of the `Log` keyword, for messages. */
  line: number;
}

export interface ConfSpread {
  /** As spreadlogd builds it: `PORT` or `PORT@HOST`. */
  daemon: string;
  logs: ConfLog[];
  line: number;
}

export interface SpreadlogdConf {
  bufferSize?: number;
  spreads: ConfSpread[];
}

export class ConfError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    message: string,
  ) {
    super(line > 0 ? `${file}:${line}: ${message}` : `${file}: ${message}`);
  }
}

type Tok = { t: 'word' | 'quoted' | '{' | '}' | '=' | 'eof'; v: string; line: number };

const KEYWORDS = new Set([
  'BufferSize', 'Spread', 'Port', 'Host', 'Log', 'VhostGroup', 'Group', 'File', 'VhostDir', 'Match', 'RewriteTimestamp',
  'CommonLogFormat', 'ModuleDir', 'LoadModule', 'ModuleLog', 'PerlLib', 'PerlUse', 'PerlLog', 'PerlHup', 'PythonImport', 'PythonLog',
]);
const UNSUPPORTED: Record<string, string> = {
  ModuleDir: 'C modules',
  LoadModule: 'C modules',
  ModuleLog: 'C modules',
  PerlLib: 'Perl',
  PerlUse: 'Perl',
  PerlLog: 'Perl',
  PerlHup: 'Perl',
  PythonImport: 'Python',
  PythonLog: 'Python',
};

function tokenize(text: string, file: string): Tok[] {
  const toks: Tok[] = [];
  let line = 1;
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '\n') {
      line++;
      i++;
    } else if (c === ' ' || c === '\t' || c === '\r') i++;
    else if (c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '{' || c === '}') {
      toks.push({ t: c, v: c, line });
      i++;
    } else if (c === '"' || c === "'") {
      const end = text.indexOf(c, i + 1);
      if (end < 0) throw new ConfError(file, line, `unterminated ${c === '"' ? 'double' : 'single'} quote`);
      const v = text.slice(i + 1, end);
      toks.push({ t: 'quoted', v, line });
      for (const ch of v) if (ch === '\n') line++;
      i = end + 1;
    } else {
      let j = i;
      while (j < text.length && !' \t\r\n#{}'.includes(text[j]!)) j++;
      // flex takes the longest match; on a tie the earlier rule wins, so a lone "=" is EQUALS
      // and "a=b" or "Group=x" is one word.
      const v = text.slice(i, j);
      toks.push({ t: v === '=' ? '=' : 'word', v, line });
      i = j;
    }
  }
  toks.push({ t: 'eof', v: 'end of file', line });
  return toks;
}

export function parseSpreadlogdConf(text: string, file = 'spreadlogd.conf'): SpreadlogdConf {
  const toks = tokenize(text, file);
  let k = 0;
  const peek = (): Tok => toks[k]!;
  const next = (): Tok => toks[k++]!;
  const fail = (tok: Tok, msg: string): never => {
    throw new ConfError(file, tok.line, msg);
  };
  const show = (tok: Tok): string => (tok.t === 'eof' ? 'end of file' : `"${tok.v}"`);
  const isKw = (tok: Tok, kw?: string): boolean => tok.t === 'word' && KEYWORDS.has(tok.v) && (kw === undefined || tok.v === kw);
  const refuseUnsupported = (tok: Tok): void => {
    const what = tok.t === 'word' ? UNSUPPORTED[tok.v] : undefined;
    if (what) fail(tok, `${tok.v} is not supported: spread-pipe write runs no ${what}; remove it (or keep spreadlogd for this log)`);
    if (isKw(tok, 'VhostGroup')) fail(tok, 'VhostGroup is not supported (spreadlogd 2.0.1 does not accept it either)');
  };
  const expect = (t: Tok['t'], what: string): Tok => {
    const tok = next();
    if (tok.t !== t) fail(tok, `expected ${what}, found ${show(tok)}`);
    return tok;
  };
  /** A value: a word that is no keyword, or anything quoted. */
  const value = (key: Tok): string => {
    expect('=', `"=" after ${key.v}`);
    const tok = next();
    if (tok.t === 'quoted' || (tok.t === 'word' && !KEYWORDS.has(tok.v))) return tok.v;
    return fail(tok, `expected a value for ${key.v}, found ${show(tok)}${isKw(tok) ? ' (a keyword: quote it)' : ''}`);
  };

  const conf: SpreadlogdConf = { spreads: [] };
  // Globals, then at least one Spread block (the grammar's order).
  for (;;) {
    const tok = peek();
    refuseUnsupported(tok);
    if (isKw(tok, 'BufferSize')) {
      next();
      const v = value(tok);
      // spreadlogd takes atoi(); a value atoi reads as something else is an error here.
      if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 1 << 30) fail(tok, `BufferSize must be a positive number of bytes, got "${v}"`);
      if (conf.bufferSize !== undefined) fail(tok, 'BufferSize given twice');
      conf.bufferSize = Number(v);
    } else break;
  }
  const seenDaemons = new Map<string, number>();
  while (peek().t !== 'eof') {
    const sp = next();
    refuseUnsupported(sp);
    if (!isKw(sp, 'Spread')) fail(sp, `expected Spread { ... }, found ${show(sp)}${isKw(sp, 'BufferSize') ? ' (BufferSize goes before the first Spread block)' : ''}`);
    expect('{', '"{" after Spread');
    let port = String(DEFAULT_SPREAD_PORT);
    let host: string | undefined;
    const logs: ConfLog[] = [];
    for (;;) {
      const tok = next();
      refuseUnsupported(tok);
      if (tok.t === '}') break;
      if (isKw(tok, 'Port') || isKw(tok, 'Host')) {
        if (logs.length) fail(tok, `${tok.v} must come before the Log blocks of its Spread block`);
        const v = value(tok);
        if (tok.v === 'Port') port = v;
        else host = v;
      } else if (isKw(tok, 'Log')) {
        logs.push(parseLog(tok));
      } else fail(tok, `expected Port, Host, Log or "}" in Spread block, found ${show(tok)}`);
    }
    const daemon = host ? `${port}@${host}` : port;
    const prev = seenDaemons.get(daemon);
    if (prev !== undefined) fail(sp, `a second Spread block for daemon ${daemon} (the first is on line ${prev}); put its Log blocks in the first`);
    seenDaemons.set(daemon, sp.line);
    if (logs.length === 0) fail(sp, `Spread block for ${daemon} has no Log block: nothing would be written`);
    conf.spreads.push({ daemon, logs, line: sp.line });
  }
  if (conf.spreads.length === 0) fail(peek(), 'no Spread block: nothing to join');
  return conf;

  function parseLog(logTok: Tok): ConfLog {
    expect('{', '"{" after Log');
    const log: ConfLog = { group: '', matches: [], line: logTok.line };
    for (;;) {
      const tok = next();
      refuseUnsupported(tok);
      if (tok.t === '}') break;
      if (!isKw(tok)) fail(tok, `expected Group, File, Match, VhostDir or RewriteTimestamp in Log block, found ${show(tok)}`);
      switch (tok.v) {
        case 'Group':
          if (log.group) fail(tok, 'Group given twice in one Log block');
          log.group = value(tok);
          break;
        case 'File':
          if (log.file !== undefined) fail(tok, 'File given twice in one Log block');
          log.file = value(tok);
          if (log.file === '' || log.file === '|') fail(tok, 'File is empty');
          break;
        case 'VhostDir':
          if (log.vhostDir !== undefined) fail(tok, 'VhostDir given twice in one Log block');
          log.vhostDir = value(tok);
          if (log.vhostDir === '') fail(tok, 'VhostDir is empty');
          break;
        case 'Match':
          log.matches.push(value(tok));
          break;
        case 'RewriteTimestamp': {
          if (log.rewrite) fail(tok, 'RewriteTimestamp given twice in one Log block');
          expect('=', '"=" after RewriteTimestamp');
          const v = next();
          // Only the bare keyword means CLF: spreadlogd reads "CommonLogFormat" in quotes as a format.
          if (isKw(v, 'CommonLogFormat')) log.rewrite = { kind: 'clf' };
          else if (v.t === 'quoted' || (v.t === 'word' && !KEYWORDS.has(v.v))) log.rewrite = { kind: 'format', format: v.v };
          else fail(v, `expected CommonLogFormat or a strftime format, found ${show(v)}`);
          break;
        }
        default:
          fail(tok, `${tok.v} does not belong in a Log block`);
      }
    }
    if (!log.group) fail(logTok, 'Log block without Group');
    if (log.file === undefined && log.vhostDir === undefined) fail(logTok, `Log block for group ${log.group} has neither File nor VhostDir: nothing would be written`);
    return log;
  }
}

export function readSpreadlogdConf(file: string): SpreadlogdConf {
  let text: string;
  try {
    text = fs.readFileSync(file, 'latin1');
  } catch (e) {
    throw new ConfError(file, 0, `cannot read: ${(e as Error).message}`);
  }
  return parseSpreadlogdConf(text, file);
}
