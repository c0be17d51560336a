/**
 * spreadlogd's Match: a POSIX extended regular expression (regcomp with
 * REG_EXTENDED, no REG_NEWLINE, C locale) searched anywhere in the message,
 * bytes as latin1. Translated once into a JavaScript RegExp with the same
 * meaning where the two dialects differ:
 *   - `.` and `[^x]` match a newline too (no REG_NEWLINE): flag `s`, and
 *     `^`/`$` only at the ends of the message (no `m` flag);
 *   - in a bracket expression a backslash is an ordinary character, `]`
 *     first is literal, and `[:alpha:]`-style classes are named sets;
 *   - glibc's `\<` `\>` (word start/end) and `` \` `` `\'` (buffer ends);
 *     `\w \W \s \S \b \B` and back-references mean the same; any other
 *     escaped character stands for itself.
 * Leftmost-longest against leftmost-first changes which text matches, never
 * whether something does, and Match only asks whether.
 */

const CLASSES: Record<string, string> = {
  alpha: 'A-Za-z',
  digit: '0-9',
  alnum: '0-9A-Za-z',
  upper: 'A-Z',
  lower: 'a-z',
  space: ' \\t\\n\\r\\f\\v',
  blank: ' \\t',
  punct: '!-\\/:-@\\[-`{-~',
  print: ' -~',
  graph: '!-~',
  cntrl: '\\x00-\\x1f\\x7f',
  xdigit: '0-9A-Fa-f',
};

export class PosixRegexError extends Error {}

const escapeJs = (c: string): string => (/[\\^$.*+?()[\]{}|/-]/.test(c) ? `\\${c}` : c);

/** Translate a POSIX ERE into JavaScript source. */
export function translateEre(ere: string): string {
  let out = '';
  let i = 0;
  while (i < ere.length) {
    const c = ere[i]!;
    if (c === '\\') {
      const n = ere[i + 1];
      if (n === undefined) throw new PosixRegexError(`"${ere}" ends with a lone backslash`);
      if (n === '<') out += '\\b(?=\\w)';
      else if (n === '>') out += '\\b(?<=\\w)';
      else if (n === '`') out += '^';
      else if (n === "'") out += '$';
      else if ('wWsSbB123456789'.includes(n)) out += `\\${n}`;
      else out += escapeJs(n);
      i += 2;
      continue;
    }
    if (c === '[') {
      let j = i + 1;
      let set = '';
      if (ere[j] === '^') {
        set += '^';
        j++;
      }
      // A ']' right after '[' or '[^' is a member, not the end.
      if (ere[j] === ']') {
        set += '\\]';
        j++;
      }
      for (;;) {
        const d = ere[j];
        if (d === undefined) throw new PosixRegexError(`unmatched [ in "${ere}"`);
        if (d === ']') break;
        if (d === '[' && (ere[j + 1] === ':' || ere[j + 1] === '.' || ere[j + 1] === '=')) {
          const kind = ere[j + 1]!;
          const end = ere.indexOf(`${kind}]`, j + 2);
          if (end < 0) throw new PosixRegexError(`unterminated [${kind} in "${ere}"`);
          const name = ere.slice(j + 2, end);
          if (kind === ':') {
            const cls = CLASSES[name];
            if (cls === undefined) throw new PosixRegexError(`unknown character class [:${name}:] in "${ere}"`);
            set += cls;
          } else {
            // Collating elements and equivalence classes: in the C locale, one character each.
            if (name.length !== 1) throw new PosixRegexError(`unsupported collating element [${kind}${name}${kind}] in "${ere}"`);
            set += escapeJs(name);
          }
          j = end + 2;
          continue;
        }
        // A '-' first or last is literal; between two members it is a range (same in both dialects, escaped in ours).
        if (d === '-' && (set === '' || set === '^' || ere[j + 1] === ']')) set += '\\-';
        else if (d === '-') set += '-';
        else set += escapeJs(d);
        j++;
      }
      out += `[${set}]`;
      i = j + 1;
      continue;
    }
    if (c === '{') {
      // An interval: {n}, {n,}, {n,m}. A '{' not followed by one is an error in ERE.
      const m = /^\{(\d+)(,(\d*))?\}/.exec(ere.slice(i));
      if (!m) throw new PosixRegexError(`bad interval at "${ere.slice(i, i + 10)}" in "${ere}"`);
      out += m[0];
      i += m[0].length;
      continue;
    }
    if (c === '/') {
      out += '\\/';
      i++;
      continue;
    }
    out += c;
    i++;
  }
  return out;
}

/** A compiled Match: test() over the message as latin1 text. */
export function compileEre(ere: string): RegExp {
  const src = translateEre(ere);
  try {
    return new RegExp(src, 's');
  } catch (e) {
    throw new PosixRegexError(`bad regular expression "${ere}": ${(e as Error).message.replace(/^Invalid regular expression: /, '')}`);
  }
}

/** A message is written when any of `res` matches it (none given: every message), as spreadlogd does. */
export function matchesAny(res: readonly RegExp[], data: Buffer): boolean {
  if (res.length === 0) return true;
  const s = data.toString('latin1');
  for (const re of res) if (re.test(s)) return true;
  return false;
}
