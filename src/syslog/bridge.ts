/**
 * From a syslog datagram to a message in the publisher's queue:
 * `HOST SP LINE LF`, HOST being the datagram's host field (or ours when it
 * has none), the group chosen by the tag (--route TAG=GROUP) or else by the
 * pipe-mode router. Bad datagrams are counted by reason, never thrown.
 */
import { type PreparedSend, type SendOptions, prepareSend } from '../spread/client.js';
import type { Router } from '../routing.js';
import { validateDestination } from '../spread/address.js';
import { ErrorCodes, SpreadPipeError } from '../errors.js';
import { DEFAULT_MAX_DATAGRAM, SYSLOG_ERRORS, type SyslogError, parseSyslog } from './parse.js';

/**
 * Largest datagram taken: what UDP can carry. unix-dgram reads into a
 * 64 KiB buffer, so a unix datagram this long or longer may have been cut:
 * it counts as oversized rather than being published cut. @default 65507
 */
export const MAX_DATAGRAM = DEFAULT_MAX_DATAGRAM;

export interface BridgeOptions {
  /** Host tag for datagrams without a host field. */
  localHost: string;
  /** Prefix lines with the host (as pipe mode's tag). */
  tag: boolean;
  maxLine: number;
  routes: ReadonlyMap<string, PreparedSend>;
  router: Router;
  push(body: Buffer, route: PreparedSend | undefined): void;
}

/**
 * `--route TAG=GROUP` arguments: a tag given several times sends its lines
 * to all its groups in one message (as repeated -g does).
 */
export function parseRoutes(args: readonly string[], send: SendOptions): Map<string, PreparedSend> {
  const groups = new Map<string, string[]>();
  for (const a of args) {
    const eq = a.indexOf('=');
    const tag = a.slice(0, eq);
    if (eq <= 0 || !/^[!-~]+$/.test(tag) || tag.includes(':')) {
      throw new SpreadPipeError(ErrorCodes.INVALID_ARGUMENT, `bad --route "${a}": expected TAG=GROUP (TAG as in nginx's tag=, no spaces or colons)`);
    }
    const list = groups.get(tag) ?? [];
    const g = validateDestination(a.slice(eq + 1));
    if (!list.includes(g)) list.push(g);
    groups.set(tag, list);
  }
  return new Map([...groups].map(([t, g]) => [t, prepareSend(g, send)]));
}

export class SyslogBridge {
  datagrams = 0;
  /** Lines published (handed to push). */
  lines = 0;
  truncated = 0;
  /** Lines routed by their tag (the rest went to the router: -g or --group-field). */
  routedByTag = 0;
  readonly bad = Object.fromEntries(SYSLOG_ERRORS.map((e) => [e, 0])) as Record<SyslogError, number>;

  constructor(private readonly opts: BridgeOptions) {}

  get badTotal(): number {
    return Object.values(this.bad).reduce((a, b) => a + b, 0);
  }

  /** Returns the reason when the datagram was refused. */
  handle(datagram: Buffer): SyslogError | undefined {
    this.datagrams++;
    const r = parseSyslog(datagram, MAX_DATAGRAM);
    if (!r.ok) {
      this.bad[r.error]++;
      return r.error;
    }
    let line = r.record.message;
    if (line.length > this.opts.maxLine) {
      // As in pipe mode: the head of an over-long line, counted.
      line = line.subarray(0, this.opts.maxLine);
      this.truncated++;
    }
    const host = this.opts.tag ? `${r.record.host ?? this.opts.localHost} ` : '';
    const hostLen = Buffer.byteLength(host, 'latin1');
    const body = Buffer.allocUnsafe(hostLen + line.length + 1);
    body.write(host, 0, 'latin1');
    line.copy(body, hostLen);
    body[body.length - 1] = 0x0a;
    let route = r.record.tag !== undefined ? this.opts.routes.get(r.record.tag) : undefined;
    if (route) this.routedByTag++;
    else route = this.opts.router.route(line);
    this.lines++;
    this.opts.push(body, route);
    return undefined;
  }
}
