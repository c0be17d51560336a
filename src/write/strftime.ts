/**
 * strftime(3) for file paths and RewriteTimestamp formats, in local time or
 * UTC, and path templates that know when their expansion next changes: the
 * writer asks for the path of each message and gets the same string until
 * the boundary (a new day, hour, ...), then the next one. A message is always
 * written whole to the path of its time of receipt, so a boundary never
 * splits a line.
 */

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

/** The fields of one instant, in local time or UTC. */
export interface TimeParts {
  year: number;
  /** 0..11 */
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  /** 0 = Sunday */
  weekday: number;
  /** Minutes east of UTC. */
  offset: number;
  ms: number;
}

export function timeParts(ms: number, utc: boolean): TimeParts {
  const d = new Date(ms);
  if (utc) {
    return { year: d.getUTCFullYear(), month: d.getUTCMonth(), day: d.getUTCDate(), hour: d.getUTCHours(), minute: d.getUTCMinutes(), second: d.getUTCSeconds(), weekday: d.getUTCDay(), offset: 0, ms };
  }
  return { year: d.getFullYear(), month: d.getMonth(), day: d.getDate(), hour: d.getHours(), minute: d.getMinutes(), second: d.getSeconds(), weekday: d.getDay(), offset: -d.getTimezoneOffset(), ms };
}

const p2 = (n: number): string => (n < 10 ? `0${n}` : String(n));
const p3 = (n: number): string => String(n).padStart(3, '0');
const s2 = (n: number): string => (n < 10 ? ` ${n}` : String(n));

function dayOfYear(t: TimeParts): number {
  return Math.round((Date.UTC(t.year, t.month, t.day) - Date.UTC(t.year, 0, 1)) / 86_400_000) + 1;
}

/** ISO 8601 week number and its year. */
function isoWeek(t: TimeParts): [number, number] {
  const d = new Date(Date.UTC(t.year, t.month, t.day));
  d.setUTCDate(d.getUTCDate() - ((t.weekday + 6) % 7) + 3); // the Thursday of this week decides the year
  const year = d.getUTCFullYear();
  const jan4 = Date.UTC(year, 0, 4);
  const week = 1 + Math.round(((d.getTime() - jan4) / 86_400_000 - 3 + ((new Date(jan4).getUTCDay() + 6) % 7)) / 7);
  return [week, year];
}

function zone(offset: number, colon = false): string {
  const sign = offset < 0 ? '-' : '+';
  const a = Math.abs(offset);
  return `${sign}${p2(Math.floor(a / 60))}${colon ? ':' : ''}${p2(a % 60)}`;
}

function zoneName(ms: number, utc: boolean): string {
  if (utc) return 'UTC';
  const part = new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' }).formatToParts(new Date(ms)).find((p) => p.type === 'timeZoneName');
  return part?.value ?? zone(-new Date(ms).getTimezoneOffset());
}

/** How long one expansion of a conversion stays the same, from the finest field down. */
export type Granularity = 'second' | 'minute' | 'hour' | 'day' | 'month' | 'year' | 'none';
const ORDER: Granularity[] = ['second', 'minute', 'hour', 'day', 'month', 'year', 'none'];

const CONVERSIONS: Record<string, { g: Granularity; f: (t: TimeParts, utc: boolean) => string }> = {
  Y: { g: 'year', f: (t) => String(t.year) },
  C: { g: 'year', f: (t) => p2(Math.floor(t.year / 100)) },
  y: { g: 'year', f: (t) => p2(t.year % 100) },
  G: { g: 'day', f: (t) => String(isoWeek(t)[1]) },
  g: { g: 'day', f: (t) => p2(isoWeek(t)[1] % 100) },
  m: { g: 'month', f: (t) => p2(t.month + 1) },
  b: { g: 'month', f: (t) => MONTHS[t.month]!.slice(0, 3) },
  h: { g: 'month', f: (t) => MONTHS[t.month]!.slice(0, 3) },
  B: { g: 'month', f: (t) => MONTHS[t.month]! },
  d: { g: 'day', f: (t) => p2(t.day) },
  e: { g: 'day', f: (t) => s2(t.day) },
  j: { g: 'day', f: (t) => p3(dayOfYear(t)) },
  a: { g: 'day', f: (t) => DAYS[t.weekday]!.slice(0, 3) },
  A: { g: 'day', f: (t) => DAYS[t.weekday]! },
  u: { g: 'day', f: (t) => String(t.weekday === 0 ? 7 : t.weekday) },
  w: { g: 'day', f: (t) => String(t.weekday) },
  U: { g: 'day', f: (t) => p2(Math.floor((dayOfYear(t) - 1 + 7 - t.weekday) / 7)) },
  W: { g: 'day', f: (t) => p2(Math.floor((dayOfYear(t) - 1 + 7 - ((t.weekday + 6) % 7)) / 7)) },
  V: { g: 'day', f: (t) => p2(isoWeek(t)[0]) },
  F: { g: 'day', f: (t) => `${t.year}-${p2(t.month + 1)}-${p2(t.day)}` },
  D: { g: 'day', f: (t) => `${p2(t.month + 1)}/${p2(t.day)}/${p2(t.year % 100)}` },
  x: { g: 'day', f: (t) => `${p2(t.month + 1)}/${p2(t.day)}/${p2(t.year % 100)}` },
  H: { g: 'hour', f: (t) => p2(t.hour) },
  k: { g: 'hour', f: (t) => s2(t.hour) },
  I: { g: 'hour', f: (t) => p2(t.hour % 12 || 12) },
  l: { g: 'hour', f: (t) => s2(t.hour % 12 || 12) },
  p: { g: 'hour', f: (t) => (t.hour < 12 ? 'AM' : 'PM') },
  P: { g: 'hour', f: (t) => (t.hour < 12 ? 'am' : 'pm') },
  M: { g: 'minute', f: (t) => p2(t.minute) },
  R: { g: 'minute', f: (t) => `${p2(t.hour)}:${p2(t.minute)}` },
  S: { g: 'second', f: (t) => p2(t.second) },
  T: { g: 'second', f: (t) => `${p2(t.hour)}:${p2(t.minute)}:${p2(t.second)}` },
  X: { g: 'second', f: (t) => `${p2(t.hour)}:${p2(t.minute)}:${p2(t.second)}` },
  r: { g: 'second', f: (t) => `${p2(t.hour % 12 || 12)}:${p2(t.minute)}:${p2(t.second)} ${t.hour < 12 ? 'AM' : 'PM'}` },
  c: { g: 'second', f: (t) => `${DAYS[t.weekday]!.slice(0, 3)} ${MONTHS[t.month]!.slice(0, 3)} ${s2(t.day)} ${p2(t.hour)}:${p2(t.minute)}:${p2(t.second)} ${t.year}` },
  s: { g: 'second', f: (t) => String(Math.floor(t.ms / 1000)) },
  // The zone changes at DST transitions, which fall on hour boundaries.
  z: { g: 'hour', f: (t) => zone(t.offset) },
  Z: { g: 'hour', f: (t, utc) => zoneName(t.ms, utc) },
  n: { g: 'none', f: () => '\n' },
  t: { g: 'none', f: () => '\t' },
  '%': { g: 'none', f: () => '%' },
};

type Piece = string | ((t: TimeParts, utc: boolean) => string);

export class StrftimeError extends Error {}

/** A format compiled once; `granularity` is its finest field. Unknown conversions are an error, not passed through. */
export class Strftime {
  readonly granularity: Granularity;
  private readonly pieces: Piece[];

  constructor(readonly format: string) {
    const pieces: Piece[] = [];
    let lit = '';
    let g = ORDER.length - 1;
    for (let i = 0; i < format.length; i++) {
      const c = format[i]!;
      if (c !== '%') {
        lit += c;
        continue;
      }
      let k = format[++i];
      // glibc's flag and modifier characters that do not change what a path means: %-d, %Ey, %Od.
      while (k === 'E' || k === 'O' || k === '-' || k === '_' || k === '0' || k === '^' || k === '#') k = format[++i];
      const conv = k === undefined ? undefined : CONVERSIONS[k];
      if (!conv) throw new StrftimeError(k === undefined ? `"${format}" ends with a lone %` : `unknown conversion %${k} in "${format}"`);
      if (conv.g === 'none') {
        lit += conv.f(timeParts(0, true), true);
        continue;
      }
      if (lit) pieces.push(lit);
      lit = '';
      pieces.push(conv.f);
      g = Math.min(g, ORDER.indexOf(conv.g));
    }
    if (lit) pieces.push(lit);
    this.pieces = pieces;
    this.granularity = ORDER[g]!;
  }

  /** True when the format has a time field (else it expands to itself, minus %% escapes). */
  get timed(): boolean {
    return this.granularity !== 'none';
  }

  render(ms: number, utc: boolean): string {
    const t = timeParts(ms, utc);
    let s = '';
    for (const p of this.pieces) s += typeof p === 'string' ? p : p(t, utc);
    return s;
  }
}

/** strftime(format, time): one-shot convenience. */
export function strftime(format: string, ms: number, utc = false): string {
  return new Strftime(format).render(ms, utc);
}

/**
 * The first instant after `ms` at which a field of granularity `g` changes.
 * Local time goes through Date's own arithmetic, so DST days of 23 or 25
 * hours end where they should; hours are taken one by one for the same reason.
 */
export function nextBoundary(ms: number, g: Granularity, utc: boolean): number {
  if (g === 'none') return Infinity;
  if (g === 'second') return Math.floor(ms / 1000) * 1000 + 1000;
  if (g === 'minute') return Math.floor(ms / 60_000) * 60_000 + 60_000;
  if (g === 'hour') {
    // Zone offsets are whole quarter hours: step to the next 15-minute mark whose local hour differs.
    const t = timeParts(ms, utc);
    let next = Math.floor(ms / 900_000) * 900_000 + 900_000;
    for (let i = 0; i < 8; i++) {
      const n = timeParts(next, utc);
      if (n.hour !== t.hour || n.day !== t.day) return next;
      next += 900_000;
    }
    return next;
  }
  const t = timeParts(ms, utc);
  const make = (y: number, mo: number, d: number): number => (utc ? Date.UTC(y, mo, d) : new Date(y, mo, d).getTime());
  if (g === 'day') return make(t.year, t.month, t.day + 1);
  if (g === 'month') return make(t.year, t.month + 1, 1);
  return make(t.year + 1, 0, 1);
}

/**
 * A path with strftime fields: `path(now)` is cheap (one comparison) until the
 * boundary. `fixed` is the part before the first field's directory: the
 * admin named it, so it must exist; what is below is created as needed.
 */
export class PathTemplate {
  private readonly fmt: Strftime;
  private current = '';
  private until = -Infinity;
  private from = Infinity;

  constructor(
    readonly template: string,
    private readonly utc = false,
  ) {
    this.fmt = new Strftime(template);
  }

  get timed(): boolean {
    return this.fmt.timed;
  }

  /** The directory part the admin wrote literally (before any % field). */
  get fixedDir(): string {
    const i = this.template.indexOf('%');
    const head = i < 0 ? this.template : this.template.slice(0, i);
    const slash = head.lastIndexOf('/');
    return slash <= 0 ? (head.startsWith('/') ? '/' : '.') : head.slice(0, slash);
  }

  path(now: number): string {
    // Also recompute when the clock went back (a test's fake clock, or the admin's).
    if (now >= this.until || now < this.from) {
      this.current = this.fmt.render(now, this.utc);
      this.from = now;
      this.until = nextBoundary(now, this.fmt.granularity, this.utc);
    }
    return this.current;
  }
}
