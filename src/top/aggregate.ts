/**
 * What `top` knows about the stream: counters, rates per interval with their
 * history (the sparklines), status codes, top-K lists and distinct clients,
 * all in bounded memory. Fed raw message bytes; no I/O here.
 */
import { DEFAULT_LOG_FORMAT, type LogFormat, LineParser, UNPARSED_REASONS, type UnparsedReason } from './parse.js';
import { ClientSet, DEFAULT_DISTINCT_CAP, DEFAULT_ONLINE_WINDOW_MS, SpaceSaving, murmur3Bytes } from './sketch.js';

/** @default 10: entries per top list */
export const DEFAULT_TOP = 10;
/** @default 10000: counters per top list (space-saving capacity) */
export const DEFAULT_TOP_CAPACITY = 10_000;
/** @default 300: points of history per series (5 minutes at the default interval) */
export const DEFAULT_HISTORY = 300;
/** @default 1000: web servers (host tags) and vhosts tracked each; more fall into OTHER */
export const DEFAULT_MAX_HOSTS = 1000;
/** Keys longer than this many bytes are cut (a top list's memory bound). @default 1024 */
export const MAX_KEY_BYTES = 1024;
/** Where hosts past DEFAULT_MAX_HOSTS are counted. */
export const OTHER = '(other)';

export interface AggregatorOptions {
  format?: LogFormat;
  tagged?: boolean;
  top?: number;
  topCapacity?: number;
  history?: number;
  distinctCap?: number;
  onlineWindowMs?: number;
  maxHosts?: number;
}

/** One ring of numbers, oldest first when read. */
export class Ring {
  private readonly buf: Float64Array;
  private n = 0;
  private head = 0;
  constructor(readonly size: number) {
    this.buf = new Float64Array(size);
  }
  push(v: number): void {
    this.buf[this.head] = v;
    this.head = (this.head + 1) % this.size;
    if (this.n < this.size) this.n++;
  }
  values(): number[] {
    const out: number[] = new Array(this.n);
    const start = (this.head - this.n + this.size) % this.size;
    for (let i = 0; i < this.n; i++) out[i] = this.buf[(start + i) % this.size]!;
    return out;
  }
}

class Source {
  lines = 0;
  requests = 0;
  bytes = 0;
  unparsed = 0;
  errors5xx = 0;
  private lastRequests = 0;
  private lastBytes = 0;
  requestsPerS = 0;
  bytesPerS = 0;
  readonly history: Ring;
  constructor(history: number) {
    this.history = new Ring(history);
  }
  tick(seconds: number): void {
    this.requestsPerS = (this.requests - this.lastRequests) / seconds;
    this.bytesPerS = (this.bytes - this.lastBytes) / seconds;
    this.lastRequests = this.requests;
    this.lastBytes = this.bytes;
    this.history.push(this.requestsPerS);
  }
}

export interface SourceSnapshot {
  lines: number;
  requests: number;
  bytes: number;
  unparsed: number;
  errors_5xx: number;
  requests_per_s: number;
  bytes_per_s: number;
}

export interface TopEntry {
  hits: number;
}

/** The JSON object `top --json` prints each interval (fields named in issue #14). */
export interface Snapshot {
  time: string;
  uptime_s: number;
  interval_ms: number;
  /** Lines received, parsed or not. */
  lines: number;
  /** Lines that parsed as requests. */
  requests: number;
  /** Response bytes (%b), summed. */
  bytes: number;
  /** Log bytes received, line feeds included. */
  input_bytes: number;
  unparsed: number;
  unparsed_by_reason: Partial<Record<UnparsedReason, number>>;
  requests_per_s: number;
  bytes_per_s: number;
  errors_5xx_per_s: number;
  hits_by_status: Record<string, number>;
  hits_by_class: Record<'1xx' | '2xx' | '3xx' | '4xx' | '5xx', number>;
  top_urls: { url: string; hits: number }[];
  top_referrers: { referrer: string; hits: number }[];
  top_agents: { agent: string; hits: number }[];
  top_clients: { client: string; hits: number }[];
  /** Per list: false once the space-saving structure evicted a key (hits may then be overestimated). */
  top_exact: { urls: boolean; referrers: boolean; agents: boolean; clients: boolean };
  distinct_clients: number;
  distinct_clients_exact: boolean;
  online_clients: number;
  online_clients_exact: boolean;
  online_window_s: number;
  by_host: Record<string, SourceSnapshot>;
  by_vhost: Record<string, SourceSnapshot>;
}

export interface History {
  /** Unix milliseconds of each point. */
  t: number[];
  requests_per_s: number[];
  bytes_per_s: number[];
  errors_5xx_per_s: number[];
  by_host: Record<string, number[]>;
  by_vhost: Record<string, number[]>;
}

type Latin1 = Buffer & { latin1Slice(start: number, end: number): string };

/** Buffer's own latin1Slice, without toString's argument checks (a host or vhost name). */
function key(b: Buffer, s: number, e: number): string {
  return (b as Latin1).latin1Slice(s, e - s > MAX_KEY_BYTES ? s + MAX_KEY_BYTES : e);
}

/** The end of a key starting at `s`: keys are cut at MAX_KEY_BYTES. */
function cut(s: number, e: number): number {
  return e - s > MAX_KEY_BYTES ? s + MAX_KEY_BYTES : e;
}

/** Keys are latin1 (one char per byte, binary-safe); shown as UTF-8 where they are. */
export function display(k: string): string {
  for (let i = 0; i < k.length; i++) if (k.charCodeAt(i) > 0x7f) return Buffer.from(k, 'latin1').toString('utf8');
  return k;
}

export class Aggregator {
  readonly parser: LineParser;
  readonly top: number;
  readonly start: number;
  lines = 0;
  requests = 0;
  bytes = 0;
  inputBytes = 0;
  readonly unparsedBy = new Float64Array(UNPARSED_REASONS.length);
  readonly status = new Float64Array(1000);
  readonly urls: SpaceSaving;
  readonly referrers: SpaceSaving;
  readonly agents: SpaceSaving;
  readonly clients: SpaceSaving;
  /** Distinct client addresses, since start and in the online window. */
  readonly seen: ClientSet;
  readonly total: Source;
  readonly hosts = new Map<string, Source>();
  readonly vhosts = new Map<string, Source>();
  private readonly historyLen: number;
  private readonly maxHosts: number;
  private readonly times: Ring;
  private readonly errHistory: Ring;
  private readonly bytesHistory: Ring;
  private lastTick: number;
  private last5xx = 0;
  errors5xxPerS = 0;
  intervalMs = 0;

  constructor(
    opts: AggregatorOptions = {},
    private readonly now: () => number = Date.now,
  ) {
    this.parser = new LineParser(opts.format ?? DEFAULT_LOG_FORMAT, opts.tagged ?? true);
    this.top = opts.top ?? DEFAULT_TOP;
    const cap = opts.topCapacity ?? DEFAULT_TOP_CAPACITY;
    this.urls = new SpaceSaving(cap);
    this.referrers = new SpaceSaving(cap);
    this.agents = new SpaceSaving(cap);
    this.clients = new SpaceSaving(cap);
    this.seen = new ClientSet(opts.distinctCap ?? DEFAULT_DISTINCT_CAP, opts.onlineWindowMs ?? DEFAULT_ONLINE_WINDOW_MS);
    this.historyLen = opts.history ?? DEFAULT_HISTORY;
    this.maxHosts = opts.maxHosts ?? DEFAULT_MAX_HOSTS;
    this.total = new Source(this.historyLen);
    this.times = new Ring(this.historyLen);
    this.errHistory = new Ring(this.historyLen);
    this.bytesHistory = new Ring(this.historyLen);
    this.start = this.lastTick = now();
  }

  get unparsed(): number {
    let n = 0;
    for (const v of this.unparsedBy) n += v;
    return n;
  }

  private source(map: Map<string, Source>, name: string): Source {
    let s = map.get(name);
    if (s === undefined) {
      // OTHER is made once, past the cap: it is the one entry beyond maxHosts.
      if (map.size >= this.maxHosts && name !== OTHER) return this.source(map, OTHER);
      s = new Source(this.historyLen);
      map.set(name, s);
    }
    return s;
  }

  /**
   * One Spread message: one or more LF-terminated lines. `sender` names the
   * web server when lines carry no host tag (`--no-tag`). At most `limit`
   * lines are taken; returns how many were.
   */
  addMessage(b: Buffer, sender = '-', limit = Infinity): number {
    return this.addRange(b, 0, b.length, sender, limit);
  }

  /** addMessage() of the message `b[start, end)`, e.g. a body inside the read buffer (SpreadClientOptions.dataSink). */
  addRange(b: Buffer, start: number, end: number, sender = '-', limit = Infinity): number {
    const sec = Math.floor(this.now() / 1000);
    let n = 0;
    let s = start;
    while (s < end && n < limit) {
      let e = b.indexOf(0x0a, s);
      if (e < 0) e = end;
      this.addLine(b, s, e, sender, sec);
      n++;
      s = e + 1;
    }
    return n;
  }

  private lastHost: Buffer = Buffer.alloc(0);
  private lastSource: Source | undefined;
  /** Host tag bytes by their hash, so that interleaved web servers cost no string either. */
  private readonly hostByHash = new Map<number, { tag: Buffer; src: Source }>();

  /** Lines of one web server come in runs (a batch is one host's): the last host's bytes are compared first. */
  private hostOf(b: Buffer, s: number, e: number): Source {
    const last = this.lastHost;
    const n = e - s;
    if (this.lastSource !== undefined && n === last.length && same(b, s, last, n)) return this.lastSource;
    const h = murmur3Bytes(b, s, e);
    const known = this.hostByHash.get(h);
    let src: Source;
    if (known !== undefined && known.tag.length === n && same(b, s, known.tag, n)) {
      src = known.src;
      this.lastHost = known.tag;
    } else {
      src = this.source(this.hosts, key(b, s, e));
      this.lastHost = Buffer.from(b.subarray(s, e));
      // Bounded: tags past the host cap (all OTHER) are looked up the slow way.
      if (this.hostByHash.size < 2 * this.maxHosts) this.hostByHash.set(h, { tag: this.lastHost, src });
    }
    this.lastSource = src;
    return src;
  }

  addLine(b: Buffer, s: number, e: number, sender: string, sec: number): void {
    this.lines++;
    this.inputBytes += e - s + 1;
    const p = this.parser;
    const why = p.parse(b, s, e);
    const o = p.out;
    const tagged = p.tagged;
    if (why !== undefined) {
      this.unparsedBy[UNPARSED_REASONS.indexOf(why)]++;
      this.total.lines++;
      this.total.unparsed++;
      if (!tagged || (why !== 'no-host-tag' && why !== 'empty')) {
        const h = this.source(this.hosts, tagged ? key(b, o.hostStart, o.hostEnd) : sender);
        h.lines++;
        h.unparsed++;
      }
      return;
    }
    const host = tagged ? this.hostOf(b, o.hostStart, o.hostEnd) : this.source(this.hosts, sender);
    const vhost = o.vhostEnd > o.vhostStart ? this.source(this.vhosts, key(b, o.vhostStart, o.vhostEnd)) : undefined;
    const bytes = o.bytes;
    const is5xx = o.status >= 500 && o.status < 600;
    this.requests++;
    this.bytes += bytes;
    this.status[o.status]++;
    count(this.total, bytes, is5xx);
    count(host, bytes, is5xx);
    if (vhost !== undefined) count(vhost, bytes, is5xx);
    // Counted from the bytes: a field becomes a string only when it takes a top-list counter.
    this.urls.addBytes(b, o.urlStart, cut(o.urlStart, o.urlEnd));
    if (o.refEnd > o.refStart && !(o.refEnd === o.refStart + 1 && b[o.refStart] === 0x2d)) this.referrers.addBytes(b, o.refStart, cut(o.refStart, o.refEnd));
    if (o.agentEnd > o.agentStart) this.agents.addBytes(b, o.agentStart, cut(o.agentStart, o.agentEnd));
    const cs = o.clientStart;
    const ce = cut(cs, o.clientEnd);
    const h = murmur3Bytes(b, cs, ce);
    this.clients.addBytes(b, cs, ce, h);
    this.seen.addBytes(b, cs, ce, sec, h);
  }

  /** Close one interval: rates and history points. */
  tick(): void {
    const now = this.now();
    const secs = Math.max(0.001, (now - this.lastTick) / 1000);
    this.intervalMs = now - this.lastTick;
    this.lastTick = now;
    this.total.tick(secs);
    for (const s of this.hosts.values()) s.tick(secs);
    for (const s of this.vhosts.values()) s.tick(secs);
    this.errors5xxPerS = (this.total.errors5xx - this.last5xx) / secs;
    this.last5xx = this.total.errors5xx;
    this.times.push(now);
    this.errHistory.push(this.errors5xxPerS);
    this.bytesHistory.push(this.total.bytesPerS);
  }

  snapshot(): Snapshot {
    const now = this.now();
    const unparsed: Partial<Record<UnparsedReason, number>> = {};
    UNPARSED_REASONS.forEach((r, i) => {
      if (this.unparsedBy[i]! > 0) unparsed[r] = this.unparsedBy[i]!;
    });
    const hits: Record<string, number> = {};
    const classes = { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 };
    for (let c = 100; c < 1000; c++) {
      const n = this.status[c]!;
      if (n === 0) continue;
      hits[String(c)] = n;
      const cls = `${Math.floor(c / 100)}xx` as keyof typeof classes;
      if (cls in classes) classes[cls] += n;
    }
    const top = this.top;
    const list = <K extends string>(ss: SpaceSaving, name: K) =>
      ss.top(top).map((e) => ({ [name]: display(e.key), hits: e.count }) as { [P in K]: string } & { hits: number });
    return {
      time: new Date(now).toISOString(),
      uptime_s: Math.round((now - this.start) / 1000),
      interval_ms: this.intervalMs,
      lines: this.lines,
      requests: this.requests,
      bytes: this.bytes,
      input_bytes: this.inputBytes,
      unparsed: this.unparsed,
      unparsed_by_reason: unparsed,
      requests_per_s: round(this.total.requestsPerS),
      bytes_per_s: round(this.total.bytesPerS),
      errors_5xx_per_s: round(this.errors5xxPerS),
      hits_by_status: hits,
      hits_by_class: classes,
      top_urls: list(this.urls, 'url'),
      top_referrers: list(this.referrers, 'referrer'),
      top_agents: list(this.agents, 'agent'),
      top_clients: list(this.clients, 'client'),
      top_exact: {
        urls: this.urls.exact,
        referrers: this.referrers.exact,
        agents: this.agents.exact,
        clients: this.clients.exact,
      },
      distinct_clients: this.seen.distinct(),
      distinct_clients_exact: this.seen.exact,
      online_clients: this.seen.online(now),
      online_clients_exact: this.seen.exact,
      online_window_s: this.seen.windowMs / 1000,
      by_host: sources(this.hosts),
      by_vhost: sources(this.vhosts),
    };
  }

  history(): History {
    const series = (m: Map<string, Source>) => Object.fromEntries([...m].map(([k, s]) => [display(k), s.history.values()]));
    return {
      t: this.times.values(),
      requests_per_s: this.total.history.values(),
      bytes_per_s: this.bytesHistory.values(),
      errors_5xx_per_s: this.errHistory.values(),
      by_host: series(this.hosts),
      by_vhost: series(this.vhosts),
    };
  }
}

/** b[s, s + n) equals t[0, n). */
function same(b: Buffer, s: number, t: Buffer, n: number): boolean {
  let i = 0;
  while (i < n && b[s + i] === t[i]) i++;
  return i === n;
}

function count(src: Source, bytes: number, is5xx: boolean): void {
  src.lines++;
  src.requests++;
  src.bytes += bytes;
  if (is5xx) src.errors5xx++;
}

function round(v: number): number {
  return Math.round(v * 10) / 10;
}

function sources(m: Map<string, Source>): Record<string, SourceSnapshot> {
  const out: Record<string, SourceSnapshot> = {};
  for (const [k, s] of m) {
    out[display(k)] = {
      lines: s.lines,
      requests: s.requests,
      bytes: s.bytes,
      unparsed: s.unparsed,
      errors_5xx: s.errors5xx,
      requests_per_s: round(s.requestsPerS),
      bytes_per_s: round(s.bytesPerS),
    };
  }
  return out;
}
