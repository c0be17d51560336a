/**
 * Syslog datagrams as nginx writes them (RFC 3164: `<PRI>Mmm dd hh:mm:ss
 * HOST TAG: MSG`, HOST absent with `nohostname`) and as rsyslog and others
 * write RFC 5424 (`<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`). Pure:
 * bytes in, a parsed record or a reason out; the message bytes are kept
 * exactly as sent (a view, not a copy).
 */

export interface SyslogRecord {
  facility: number;
  severity: number;
  /** The HOST field, or undefined when absent (nginx nohostname, RFC 5424 "-"). */
  host: string | undefined;
  /** The tag (RFC 3164) or APP-NAME (RFC 5424), without "[pid]" and ":". */
  tag: string | undefined;
  /** The log line itself: everything after the header, one trailing LF/CRLF removed. */
  message: Buffer;
  format: '3164' | '5424';
}

export type SyslogError = 'empty' | 'no-pri' | 'bad-pri' | 'bad-timestamp' | 'bad-header' | 'oversized';
export const SYSLOG_ERRORS: readonly SyslogError[] = ['empty', 'no-pri', 'bad-pri', 'bad-timestamp', 'bad-header', 'oversized'];

export type ParseResult = { ok: true; record: SyslogRecord } | { ok: false; error: SyslogError };

const MONTHS = new Set(['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']);
const fail = (error: SyslogError): ParseResult => ({ ok: false, error });

const isDigit = (c: number | undefined): boolean => c !== undefined && c >= 0x30 && c <= 0x39;
/** Printable ASCII without space: what header tokens are made of. */
const isToken = (c: number): boolean => c > 0x20 && c < 0x7f;

/** Strip one trailing LF (and a CR before it): rsyslog may end a datagram with one, nginx does not. */
function trimEnd(b: Buffer): Buffer {
  let end = b.length;
  if (end > 0 && b[end - 1] === 0x0a) end--;
  if (end > 0 && b[end - 1] === 0x0d) end--;
  return end === b.length ? b : b.subarray(0, end);
}

/** Index of the next space at or after `i`, or -1; fails (-2) on a non-token byte first. */
function tokenEnd(b: Buffer, i: number): number {
  for (let j = i; j < b.length; j++) {
    if (b[j] === 0x20) return j;
    if (!isToken(b[j]!)) return -2;
  }
  return -1;
}

export function parseSyslog(b: Buffer, maxLength = 65536): ParseResult {
  if (b.length === 0) return fail('empty');
  if (b.length > maxLength) return fail('oversized');
  if (b[0] !== 0x3c /* < */) return fail('no-pri');
  let i = 1;
  let pri = 0;
  while (i < b.length && isDigit(b[i]) && i <= 3) pri = pri * 10 + (b[i++]! - 0x30);
  if (i === 1 || b[i] !== 0x3e /* > */ || pri > 191) return fail('bad-pri');
  i++;
  const facility = pri >> 3;
  const severity = pri & 7;
  if (b[i] === 0x31 /* 1 */ && b[i + 1] === 0x20) return parse5424(b, i + 2, facility, severity);
  return parse3164(b, i, facility, severity);
}

function parse3164(b: Buffer, i: number, facility: number, severity: number): ParseResult {
  // "Mmm dd hh:mm:ss " — the day is space-padded.
  if (b.length < i + 16) return fail('bad-timestamp');
  const month = b.toString('latin1', i, i + 3);
  const ok =
    MONTHS.has(month) &&
    b[i + 3] === 0x20 &&
    (b[i + 4] === 0x20 || isDigit(b[i + 4])) &&
    isDigit(b[i + 5]) &&
    b[i + 6] === 0x20 &&
    isDigit(b[i + 7]) &&
    isDigit(b[i + 8]) &&
    b[i + 9] === 0x3a &&
    isDigit(b[i + 10]) &&
    isDigit(b[i + 11]) &&
    b[i + 12] === 0x3a &&
    isDigit(b[i + 13]) &&
    isDigit(b[i + 14]) &&
    b[i + 15] === 0x20;
  if (!ok) return fail('bad-timestamp');
  i += 16;
  const e1 = tokenEnd(b, i);
  if (e1 < 0 || e1 === i) return fail('bad-header');
  let host: string | undefined;
  let tagEnd: number;
  let tagStart: number;
  if (b[e1 - 1] === 0x3a /* : */) {
    // "TAG: MSG" — no host field (nginx's nohostname).
    tagStart = i;
    tagEnd = e1 - 1;
  } else {
    host = b.toString('latin1', i, e1);
    const e2 = tokenEnd(b, e1 + 1);
    if (e2 >= 0 && e2 > e1 + 1 && b[e2 - 1] === 0x3a) {
      tagStart = e1 + 1;
      tagEnd = e2 - 1;
    } else {
      // "HOST MSG" without a tag: the message starts after the host.
      return { ok: true, record: { facility, severity, host, tag: undefined, message: trimEnd(b.subarray(e1 + 1)), format: '3164' } };
    }
  }
  const rawTag = b.toString('latin1', tagStart, tagEnd);
  const tag = rawTag.replace(/\[[^\]]*\]$/, '');
  const msgStart = (host === undefined ? e1 : tokenEnd(b, e1 + 1)) + 1;
  return { ok: true, record: { facility, severity, host, tag: tag || undefined, message: trimEnd(b.subarray(msgStart)), format: '3164' } };
}

function parse5424(b: Buffer, i: number, facility: number, severity: number): ParseResult {
  const fields: (string | undefined)[] = [];
  // TIMESTAMP HOSTNAME APP-NAME PROCID MSGID, each a token or "-".
  for (let f = 0; f < 5; f++) {
    const e = tokenEnd(b, i);
    if (e < 0 || e === i) return fail(f === 0 ? 'bad-timestamp' : 'bad-header');
    const v = b.toString('latin1', i, e);
    fields.push(v === '-' ? undefined : v);
    i = e + 1;
  }
  if (fields[0] !== undefined && !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)$/.test(fields[0])) return fail('bad-timestamp');
  // STRUCTURED-DATA: "-" or one or more [id param="value" ...], where \] may be escaped in values.
  if (b[i] === 0x2d /* - */) i++;
  else if (b[i] === 0x5b /* [ */) {
    while (b[i] === 0x5b) {
      let inQuote = false;
      for (i++; i < b.length; i++) {
        const c = b[i];
        if (c === 0x5c /* \ */ && inQuote) i++;
        else if (c === 0x22) inQuote = !inQuote;
        else if (c === 0x5d && !inQuote) break;
      }
      if (i >= b.length) return fail('bad-header');
      i++;
    }
  } else return fail('bad-header');
  let message: Buffer;
  if (i >= b.length) message = b.subarray(b.length);
  else if (b[i] !== 0x20) return fail('bad-header');
  else {
    let s = i + 1;
    if (b[s] === 0xef && b[s + 1] === 0xbb && b[s + 2] === 0xbf) s += 3; // UTF-8 BOM
    message = trimEnd(b.subarray(s));
  }
  return { ok: true, record: { facility, severity, host: fields[1], tag: fields[2], message, format: '5424' } };
}
