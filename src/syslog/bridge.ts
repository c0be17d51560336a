/**
 * From a syslog datagram to a message in the publisher's queue:
 * `HOST SP LINE LF`, HOST being the datagram's host field (or ours when it
 * has none), the group chosen by the tag (--route TAG=GROUP) or else by the
 * pipe-mode router. Bad datagrams are counted by reason, never thrown.
 */
import type { PreparedSend } from '../spread/client.js';
import type { Router } from '../routing.js';
import { type SyslogError, parseSyslog } from './parse.js';

/** No syslog sender sends more than a UDP datagram can carry. @default 65536 */
export const MAX_DATAGRAM = 65536;

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

export class SyslogBridge {
  datagrams = 0;
  truncated = 0;
  readonly bad: Record<SyslogError, number> = { empty: 0, 'no-pri': 0, 'bad-pri': 0, 'bad-timestamp': 0, 'bad-header': 0, oversized: 0 };

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
      line = line.subarray(0, this.opts.maxLine);
      this.truncated++;
    }
    const host = this.opts.tag ? `${r.record.host ?? this.opts.localHost} ` : '';
    const hostLen = Buffer.byteLength(host, 'latin1');
    const body = Buffer.allocUnsafe(hostLen + line.length + 1);
    body.write(host, 0, 'latin1');
    line.copy(body, hostLen);
    body[body.length - 1] = 0x0a;
    const route = (r.record.tag !== undefined ? this.opts.routes.get(r.record.tag) : undefined) ?? this.opts.router.route(line);
    this.opts.push(body, route);
    return undefined;
  }
}
