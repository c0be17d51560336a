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
import { ErrorCodes, SpreadPipeError, errorMessage } from '../errors.js';
import type { PreparedSend } from '../spread/client.js';
import { SERVICE_BY_NAME, type ServiceName } from '../spread/constants.js';
import type { Router } from '../routing.js';
import { SyslogBridge, parseRoutes } from './bridge.js';
import { DEFAULT_RECV_BUFFER, DEFAULT_SOCKET_MODE, type SyslogSpec, SyslogListener, parseSocketMode, parseSyslogSpec, resolveGroup } from './listener.js';

/** At most one report of refused datagrams per this many ms (the CLI passes --report-interval). @default 10000 */
export const DEFAULT_BAD_REPORT_INTERVAL = 10_000;

export const SYSLOG_OPTIONS = {
  syslog: {
    type: 'string',
    array: true,
    describe: 'also take syslog datagrams (nginx access_log syslog:) on udp://HOST:PORT or unix:/PATH (repeatable)',
  },
  route: { type: 'string', array: true, describe: 'with --syslog: lines tagged TAG go to GROUP (TAG=GROUP, repeatable); others to -g' },
  stdin: { type: 'boolean', default: false, describe: 'with --syslog: read stdin lines as well (its EOF does not stop the bridge)' },
  'syslog-mode': { type: 'string', default: '0660', describe: 'mode of the unix sockets created (who can write to them can add log lines)' },
  'syslog-group': { type: 'string', describe: "group given the unix sockets, e.g. www-data for nginx's workers [default: ours]" },
  'syslog-recv-buffer': { type: 'string', default: String(DEFAULT_RECV_BUFFER), describe: 'kernel receive buffer asked for on UDP sockets (capped by net.core.rmem_max)' },
} as const;

export interface SyslogArgs {
  specs: SyslogSpec[];
  routes: Map<string, PreparedSend>;
  stdin: boolean;
  socketMode: number;
  socketGroup: number | undefined;
  recvBuffer: number;
}

interface Argv {
  syslog?: (string | number)[];
  route?: (string | number)[];
  stdin: boolean;
  'syslog-mode': string;
  'syslog-group'?: string;
  'syslog-recv-buffer': string;
  service: string;
}

const invalid = (m: string): SpreadPipeError => new SpreadPipeError(ErrorCodes.INVALID_ARGUMENT, m);

/** The one checking step; undefined without --syslog (then the other syslog options are refused). */
export function checkSyslogArgs(argv: Argv, parseSize: (text: string, opt: string) => number): SyslogArgs | undefined {
  const specs = (argv.syslog ?? []).map((s) => parseSyslogSpec(String(s)));
  if (specs.length === 0) {
    for (const o of ['route', 'syslog-group'] as const) if (argv[o] !== undefined) throw invalid(`--${o} needs --syslog`);
    if (argv.stdin) throw invalid('--stdin needs --syslog (without it stdin is read anyway)');
    return undefined;
  }
  const labels = new Set<string>();
  for (const s of specs) {
    const key = s.kind === 'unix' ? s.path : `${s.host}:${s.port}`;
    if (labels.has(key) && !(s.kind === 'udp' && s.port === 0)) throw invalid(`--syslog ${s.label} is given twice`);
    labels.add(key);
  }
  const routes = parseRoutes(
    (argv.route ?? []).map((r) => String(r)),
    { service: SERVICE_BY_NAME[argv.service as ServiceName] },
  );
  const recvBuffer = parseSize(argv['syslog-recv-buffer'], '--syslog-recv-buffer');
  if (recvBuffer < 1 || recvBuffer > 2 ** 31 - 1) throw invalid('--syslog-recv-buffer must be 1..2G');
  return {
    specs,
    routes,
    stdin: argv.stdin,
    socketMode: parseSocketMode(argv['syslog-mode'] ?? DEFAULT_SOCKET_MODE.toString(8)),
    socketGroup: argv['syslog-group'] === undefined ? undefined : resolveGroup(argv['syslog-group']),
    recvBuffer,
  };
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
export async function startSyslogInput(args: SyslogArgs, opts: SyslogInputOptions): Promise<SyslogInput> {
  const bridge = new SyslogBridge({ localHost: opts.localHost, tag: opts.tag, maxLine: opts.maxLine, routes: args.routes, router: opts.router, push: opts.push });
  const reports = new BadReports(bridge, opts.reportInterval ?? DEFAULT_BAD_REPORT_INTERVAL, opts.log);
  const listener = await SyslogListener.start(
    args.specs,
    (d, source) => {
      const why = bridge.handle(d);
      if (why) reports.refused(why, source.label);
    },
    {
      socketMode: args.socketMode,
      socketGroup: args.socketGroup,
      recvBuffer: args.recvBuffer,
      onError: (e, s) => opts.log(`syslog ${s.label}: ${errorMessage(e)}`),
    },
  );
  for (const s of listener.sockets) {
    const buf = s.recvBuffer === undefined ? '' : ` (receive buffer ${Math.round(s.recvBuffer / 1024)} KiB${s.recvBuffer < args.recvBuffer ? '; raise net.core.rmem_max for more' : ''})`;
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
    const parts = [...this.pending].map(([k, v]) => `${k}=${v}`).join(' ');
    this.pending.clear();
    this.lastReport = Date.now();
    this.log(`refused syslog datagrams: ${parts} (last: ${this.last}; ${this.bridge.badTotal} in all)`);
  }
}

/**
 * What pipe mode waits on with --syslog: SIGTERM or SIGINT. stdin is read
 * only with --stdin, through `readStdin` (pipe mode's own reader), and its
 * end does not end the bridge.
 */
export function untilStopped(args: SyslogArgs, readStdin: () => Promise<void>, log: (line: string) => void): Promise<void> {
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
