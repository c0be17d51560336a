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

/**
 * Why a datagram was refused:
 * - empty: zero bytes;
 * - no-pri: text that does not start with `<`;
 * - binary: bytes that are no syslog text at all (control bytes where the
 *   PRI should be), or a message holding NUL, CR or LF: published as one
 *   line, it would forge or break the lines after it;
 * - bad-pri: `<` without 1-3 digits and `>`, or a value over 191;
 * - bad-timestamp, bad-header: the RFC 3164 / RFC 5424 header does not parse;
 * - oversized: longer than the caller's limit (or cut by the socket's buffer).
 */
export type SyslogError = 'empty' | 'no-pri' | 'binary' | 'bad-pri' | 'bad-timestamp' | 'bad-header' | 'oversized';
export const SYSLOG_ERRORS: readonly SyslogError[] = ['empty', 'no-pri', 'binary', 'bad-pri', 'bad-timestamp', 'bad-header', 'oversized'];

export type ParseResult = { ok: true; record: SyslogRecord } | { ok: false; error: SyslogError };

/** RFC 5424 lengths of TIMESTAMP, HOSTNAME, APP-NAME, PROCID, MSGID. */
const MAX_5424_FIELD = [32, 255, 48, 128, 32];
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

/** Largest datagram accepted by default: what one UDP datagram can carry. @default 65507 */
export const DEFAULT_MAX_DATAGRAM = 65507;

/** Control bytes other than TAB, CR, LF in the first bytes: not text. */
function looksBinary(b: Buffer): boolean {
  const n = Math.min(b.length, 64);
  for (let i = 0; i < n; i++) {
    const c = b[i]!;
    if ((c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) || c === 0x7f) return true;
  }
  return false;
}

/** The message becomes one line: NUL, CR or LF inside it would break the framing downstream. */
function framingSafe(m: Buffer): boolean {
  return m.indexOf(0x0a) < 0 && m.indexOf(0x0d) < 0 && m.indexOf(0) < 0;
}

function ok(record: SyslogRecord): ParseResult {
  return framingSafe(record.message) ? { ok: true, record } : fail('binary');
}

export function parseSyslog(b: Buffer, maxLength = DEFAULT_MAX_DATAGRAM): ParseResult {
  if (b.length === 0) return fail('empty');
  if (b.length > maxLength) return fail('oversized');
  if (b[0] !== 0x3c /* < */) return fail(looksBinary(b) ? 'binary' : 'no-pri');
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

const RFC3339 = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d{1,6})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$/;

const num2 = (b: Buffer, i: number): number => (isDigit(b[i]) && isDigit(b[i + 1]) ? (b[i]! - 0x30) * 10 + b[i + 1]! - 0x30 : -1);

/** Length of a "Mmm dd hh:mm:ss " timestamp at i (the day space- or zero-padded), or 0. */
function bsdTimestamp(b: Buffer, i: number): number {
  if (b.length < i + 16 || !MONTHS.has(b.toString('latin1', i, i + 3)) || b[i + 3] !== 0x20) return 0;
  const day = b[i + 4] === 0x20 && isDigit(b[i + 5]) ? b[i + 5]! - 0x30 : num2(b, i + 4);
  const hh = num2(b, i + 7);
  const mm = num2(b, i + 10);
  const ss = num2(b, i + 13);
  const shape = b[i + 6] === 0x20 && b[i + 9] === 0x3a && b[i + 12] === 0x3a && b[i + 15] === 0x20;
  return shape && day >= 1 && day <= 31 && hh >= 0 && hh <= 23 && mm >= 0 && mm <= 59 && ss >= 0 && ss <= 60 ? 16 : 0;
}

function parse3164(b: Buffer, i: number, facility: number, severity: number): ParseResult {
  // nginx: "Mmm dd hh:mm:ss " with a space-padded day. rsyslog's
  // RSYSLOG_ForwardFormat puts an RFC 3339 timestamp in the same place.
  let ts = bsdTimestamp(b, i);
  if (ts === 0 && isDigit(b[i])) {
    const e = tokenEnd(b, i);
    if (e > i && RFC3339.test(b.toString('latin1', i, e))) ts = e + 1 - i;
  }
  if (ts === 0) return fail('bad-timestamp');
  i += ts;
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
      return ok({ facility, severity, host, tag: undefined, message: trimEnd(b.subarray(e1 + 1)), format: '3164' });
    }
  }
  const rawTag = b.toString('latin1', tagStart, tagEnd);
  const tag = rawTag.replace(/\[[^\]]*\]$/, '');
  const msgStart = (host === undefined ? e1 : tokenEnd(b, e1 + 1)) + 1;
  return ok({ facility, severity, host, tag: tag || undefined, message: trimEnd(b.subarray(msgStart)), format: '3164' });
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
  if (fields[0] !== undefined && !RFC3339.test(fields[0])) return fail('bad-timestamp');
  for (let f = 1; f < 5; f++) if ((fields[f]?.length ?? 0) > MAX_5424_FIELD[f]!) return fail('bad-header');
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
  return ok({ facility, severity, host: fields[1], tag: fields[2], message, format: '5424' });
}
