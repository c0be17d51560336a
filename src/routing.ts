/**
 * Which groups a line goes to. Static groups (-g, one message to all of
 * them), or mod_log_spread-style routing for users migrating from it: a
 * group per virtual host taken from a field of the line, optionally hashed
 * into PREFIX-0 .. PREFIX-(N-1) (VhostLogHashSize) so that a writer can
 * split the load without one group per vhost.
 */
import { type PreparedSend, type SendOptions, prepareSend } from './spread/client.js';
import { isNameByte } from './spread/constants.js';
import { fnv1a } from './fnv1a.js';

export interface RouteOptions {
  /** Static destinations; also the fallback when a line has no usable field. */
  groups: readonly string[];
  /** 1-based whitespace-separated field holding the vhost. */
  field?: number;
  /** Prefix of routed group names. @default '' */
  prefix?: string;
  /** Hash the field into this many groups PREFIX-0..N-1. */
  hashBuckets?: number;
  send: SendOptions;
}

/** Prepared routes kept per group name; a bounded cache, as vhosts may be many. */
const MAX_CACHED_ROUTES = 10_000;

/** The n-th (1-based) field separated by spaces or tabs, or undefined. */
export function field(line: Uint8Array, n: number): Uint8Array | undefined {
  let i = 0;
  const len = line.length;
  for (let f = 1; ; f++) {
    while (i < len && (line[i] === 0x20 || line[i] === 0x09)) i++;
    if (i >= len) return undefined;
    const start = i;
    while (i < len && line[i] !== 0x20 && line[i] !== 0x09) i++;
    if (f === n) return line.subarray(start, i);
  }
}

export class Router {
  readonly fallback: PreparedSend | undefined;
  /** Lines sent to the fallback because the field was missing or not a legal group name. */
  fallbacks = 0;
  private readonly cache = new Map<string, PreparedSend>();

  constructor(private readonly opts: RouteOptions) {
    this.fallback = opts.groups.length ? prepareSend(opts.groups, opts.send) : undefined;
  }

  get routed(): boolean {
    return this.opts.field !== undefined;
  }

  /** The destinations of a line; undefined when it has none (routed, no fallback). */
  route(line: Uint8Array): PreparedSend | undefined {
    if (this.opts.field === undefined) return this.fallback;
    const f = field(line, this.opts.field);
    const name = f ? this.groupName(f) : undefined;
    if (name === undefined) {
      this.fallbacks++;
      return this.fallback;
    }
    let p = this.cache.get(name);
    if (!p) {
      if (this.cache.size >= MAX_CACHED_ROUTES) this.cache.clear();
      p = prepareSend([name], this.opts.send);
      this.cache.set(name, p);
    }
    return p;
  }

  private groupName(f: Uint8Array): string | undefined {
    const prefix = this.opts.prefix ?? '';
    if (this.opts.hashBuckets) return `${prefix}${prefix ? '-' : ''}${fnv1a(f) % this.opts.hashBuckets}`;
    if (f.length === 0 || prefix.length + f.length > 31) return undefined;
    for (const c of f) if (!isNameByte(c)) return undefined;
    return prefix + Buffer.from(f.buffer, f.byteOffset, f.length).toString('latin1');
  }
}
