/**
 * Pipe mode's syslog input (`--syslog`, `--route`, `--stdin`, ...), kept
 * here so that src/cli/pipe.ts only calls it: the options, their one
 * checking step, and the running bridge (listener + bridge + reports). The
 * lines go to the same publisher as stdin's (queue, failover, drops).
 *
 * With --syslog, stdin is not read unless --stdin is given: a bridge run by
 * systemd has no useful stdin, and its EOF must not stop the bridge. The
 * bridge runs until SIGTERM/SIGINT.
 */
import { errorMessage } from '../errors.js';
import type { PreparedSend } from '../spread/client.js';
import type { Router } from '../routing.js';
import { parseSyslogSpec, type SyslogSpec } from '../spread/address.js';
import { SyslogBridge, parseRoutes } from '../syslog/bridge.js';
import { DEFAULT_RECV_BUFFER, DEFAULT_SOCKET_MODE, type ListenerOptions, SyslogListener, parseSocketMode, resolveGroup, resolveListenerOptions } from '../syslog/listener.js';
import { type Given, type OptTable, usage } from './args.js';
import { UsageError } from './common.js';

/** At most one report of refused datagrams per this many ms (the CLI passes --report-interval). @default 10000 */
export const DEFAULT_BAD_REPORT_INTERVAL = 10_000;

export const SYSLOG_OPTIONS = {
  syslog: { type: 'string', repeat: true, describe: 'also take syslog datagrams (nginx access_log syslog:) on udp://HOST:PORT or unix:/PATH' },
  route: { type: 'string', repeat: true, describe: 'with --syslog: lines tagged TAG go to GROUP (TAG=GROUP); others to -g' },
  stdin: { type: 'boolean', describe: 'with --syslog: read stdin lines as well (its EOF does not stop the bridge)' },
  'syslog-mode': { type: 'string', default: `0${DEFAULT_SOCKET_MODE.toString(8)}`, field: 'socketMode', describe: 'mode of the unix sockets created (who can write to them can add log lines)' },
  'syslog-group': { type: 'string', field: 'socketGroup', describe: "group given the unix sockets, e.g. www-data for nginx's workers [default: ours]" },
  'syslog-recv-buffer': { type: 'string', default: String(DEFAULT_RECV_BUFFER), field: 'recvBuffer', describe: 'kernel receive buffer asked for on UDP sockets (capped by net.core.rmem_max)' },
} as const satisfies OptTable;

export interface SyslogConfig {
  specs: SyslogSpec[];
  routes: Map<string, PreparedSend>;
  /** The most groups one --route tag sends to (for the line-length ceiling). */
  maxRouteGroups: number;
  stdin: boolean;
  listener: ListenerOptions & { socketMode: number; recvBuffer: number };
}

/** The one checking step; undefined without --syslog (then the other syslog options are refused). */
export function parseSyslogArgs(g: Given, service: number): SyslogConfig | undefined {
  const t = g.table;
  const specs = g.list('syslog').map((s) => usage(t, () => parseSyslogSpec(s), g.label('syslog')));
  if (specs.length === 0) {
    for (const o of ['route', 'syslog-group', 'syslog-mode', 'syslog-recv-buffer'] as const) if (g.has(o)) throw new UsageError(`${g.label(o)} needs --syslog`);
    if (g.bool('stdin')) throw new UsageError('--stdin needs --syslog (without it stdin is read anyway)');
    return undefined;
  }
  const labels = new Set<string>();
  for (const s of specs) {
    const key = s.kind === 'unix' ? s.path : `${s.host}:${s.port}`;
    if (labels.has(key) && !(s.kind === 'udp' && s.port === 0)) throw new UsageError(`--syslog ${s.label} given twice`);
    labels.add(key);
  }
  const routeArgs = g.list('route');
  const routes = usage(t, () => parseRoutes(routeArgs, { service }), g.label('route'));
  const perTag = new Map<string, number>();
  for (const r of routeArgs) perTag.set(r.slice(0, r.indexOf('=')), (perTag.get(r.slice(0, r.indexOf('='))) ?? 0) + 1);
  const mode = g.str('syslog-mode');
  const group = g.str('syslog-group');
  const listener = usage(t, () =>
    resolveListenerOptions({
      socketMode: mode === undefined ? undefined : usage(t, () => parseSocketMode(mode), g.label('syslog-mode')),
      socketGroup: group === undefined ? undefined : usage(t, () => resolveGroup(group), g.label('syslog-group')),
      recvBuffer: g.size('syslog-recv-buffer'),
    }),
  );
  return { specs, routes, maxRouteGroups: Math.max(0, ...perTag.values()), stdin: g.bool('stdin'), listener };
}

export interface SyslogInputOptions {
  /** Host for datagrams without a host field (-h, or this machine's name). */
  localHost: string;
  /** Prefix lines with the host (--no-tag: the line alone). */
  tag: boolean;
  maxLine: number;
  router: Router;
  push(body: Buffer, route: PreparedSend | undefined): void;
  /** Where one-line reports go (the CLI's log()). */
  log(line: string): void;
  /** @default 10000 */
  reportInterval?: number;
}

export interface SyslogInput {
  readonly bridge: SyslogBridge;
  readonly listener: SyslogListener;
  summary(): string;
  /** Stop receiving, remove our unix sockets, report the counters. Idempotent. */
  close(): void;
}

/**
 * Bind every --syslog socket (a failure throws: nothing half-started is
 * left) and feed what arrives into `push`.
 */
export async function startSyslogInput(args: SyslogConfig, opts: SyslogInputOptions): Promise<SyslogInput> {
  const bridge = new SyslogBridge({ localHost: opts.localHost, tag: opts.tag, maxLine: opts.maxLine, routes: args.routes, router: opts.router, push: opts.push });
  const reports = new BadReports(bridge, opts.reportInterval ?? DEFAULT_BAD_REPORT_INTERVAL, opts.log);
  const listener = await SyslogListener.start(
    args.specs,
    (d, source) => {
      const why = bridge.handle(d);
      if (why) reports.refused(why, source.label);
    },
    { ...args.listener, onError: (e, s) => opts.log(`syslog ${s.label}: ${errorMessage(e)}`) },
  );
  for (const s of listener.sockets) {
    const buf = s.recvBuffer === undefined ? '' : ` (receive buffer ${Math.round(s.recvBuffer / 1024)} KiB${s.recvBuffer < args.listener.recvBuffer ? '; raise net.core.rmem_max for more' : ''})`;
    opts.log(`listening on ${s.label}${buf}`);
  }
  const summary = (): string => {
    const bad = Object.entries(bridge.bad)
      .filter(([, v]) => v > 0)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    return `syslog datagrams=${bridge.datagrams} lines=${bridge.lines} truncated=${bridge.truncated} refused=${bridge.badTotal}${bad ? ` (${bad})` : ''}`;
  };
  const onUsr1 = (): void => opts.log(`counters: ${summary()}`);
  // Even on an exit that skips close(), the unix sockets must not stay behind.
  const onExit = (): void => listener.close();
  process.on('SIGUSR1', onUsr1);
  process.once('exit', onExit);
  let closed = false;
  return {
    bridge,
    listener,
    summary,
    close: () => {
      if (closed) return;
      closed = true;
      listener.close();
      process.removeListener('SIGUSR1', onUsr1);
      process.removeListener('exit', onExit);
      reports.stop();
      opts.log(`exit: ${summary()}`);
    },
  };
}

/** Refused datagrams on stderr: the first at once, then at most one line per interval. */
class BadReports {
  private pending = new Map<string, number>();
  private last = '';
  private lastReport = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly bridge: SyslogBridge,
    private readonly interval: number,
    private readonly log: (line: string) => void,
  ) {}

  refused(why: string, source: string): void {
    this.pending.set(why, (this.pending.get(why) ?? 0) + 1);
    this.last = `${why} from ${source}`;
    if (this.timer) return;
    const wait = this.lastReport + this.interval - Date.now();
    if (wait <= 0) this.flush();
    else {
      this.timer = setTimeout(() => this.flush(), wait);
      this.timer.unref();
    }
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.flush();
  }

  private flush(): void {
    this.timer = undefined;
    if (this.pending.size === 0) return;
    // Counts by reason are this report's own; the running total is labelled as such, never mixed in.
    const parts = [...this.pending].map(([k, v]) => `${k}=${v}`).join(' ');
    const now = [...this.pending.values()].reduce((a, b) => a + b, 0);
    this.pending.clear();
    this.lastReport = Date.now();
    this.log(`refused syslog datagrams: ${parts} (${now} since the last report, ${this.bridge.badTotal} since start; last: ${this.last})`);
  }
}

/**
 * What pipe mode waits on with --syslog: SIGTERM or SIGINT. stdin is read
 * only with --stdin, through `readStdin` (pipe mode's own reader), and its
 * end does not end the bridge.
 */
export function untilStopped(args: SyslogConfig, readStdin: () => Promise<void>, log: (line: string) => void): Promise<void> {
  let stopping = false;
  if (args.stdin) {
    void readStdin().then(() => {
      if (!stopping) log('stdin closed; still taking syslog datagrams');
    });
  }
  return new Promise<void>((resolve) => {
    const stop = (): void => {
      stopping = true;
      resolve();
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}
