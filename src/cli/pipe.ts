/**
 * Pipe mode: `CustomLog "|spread-pipe -g jigdo -s 4803@loghost" combined`.
 * stdin is read at full speed whatever the daemon does; each line becomes
 * `HOST SP LINE LF` in the publisher's bounded queue.
 *
 * Over 300 lines on purpose: one concern, pipe mode's wiring (its parseArgs,
 * the input flow and the stderr reporter).
 */
import fs from 'node:fs';
import os from 'node:os';
import { EPILOGUE, EXIT_OK, MODES, PROGRAM, UsageError, localSocketHint, log } from './common.js';
import { type Given, type OptTable, parseCommandLine, usage } from './args.js';
import { type HostPort, parseHostPort } from '../metrics.js';
import { pipeMetrics, startMetrics, syslogMetrics } from './metrics.js';
import {
  type Counters,
  DEFAULT_BATCH_BYTES,
  DEFAULT_CONNECT_TIMEOUT,
  DEFAULT_FAILBACK_INTERVAL,
  DEFAULT_STALL_TIMEOUT,
  Publisher,
  type PublisherEvent,
  type ResolvedPublisherOptions,
  resolvePublisherOptions,
} from '../publisher.js';
import { DEFAULT_QUEUE_BYTES, DEFAULT_QUEUE_LINES, OVERFLOW_POLICIES, type OverflowPolicy, defaultOnFull } from '../queue.js';
import { DEFAULT_MAX_LINE, LineSplitter, resolveSplitterOptions } from '../reader.js';
import { type RouteOptions, Router } from '../routing.js';
import { type DaemonAddress, parseDaemonAddress, validateDestination } from '../spread/address.js';
import { DEFAULT_SPREAD_PORT, MAX_GROUPS_PER_MESSAGE, MAX_GROUP_NAME, SAFE_MESSAGE_BODY_LEN, SERVICE_BY_NAME, type ServiceName, UNIX_SOCKET_DIR, isNameByte } from '../spread/constants.js';
import { EarlyLines, GapNotices, RELIABLE_OPTIONS, SPOOL_LOCK_GRACE, type ReliableConfig, openSpool, parseReliableArgs, reliableSummary } from './pipe-reliable.js';
import { type Spool } from '../spool.js';
import { spoolHandover, waitForSpool } from './pipe-reliable.js';
import type { NewStreamReason } from '../reliable.js';
import { SYSLOG_OPTIONS, type SyslogConfig, parseSyslogArgs, startSyslogInput, untilStopped } from './syslog.js';
import { choiceOption } from '../options.js';
import { type TargetUser, USER_OPTIONS, becomeUser, parseUser, warnIfRoot } from './user.js';
import { TLS_CLIENT_OPTIONS, TLS_DAEMON_FORM, clientTls } from './tls-args.js';

const NL = Buffer.from('\n');

/** What the new-stream line says of why. */
const NEW_STREAM_WHY: Record<NewStreamReason, string> = {
  'ids-jumped': 'line ids jumped past what receivers take as new: lines were dropped unsent',
  'name-refused': 'the daemon kept refusing the name: a stale session of ours',
  'after-crash': 'the lines read since a crash: the crashed process may have sent their ids',
};

/** @default 2000 — Apache waits a few seconds for a piped logger after SIGTERM. */
export const DEFAULT_DRAIN_TIMEOUT = 2000;
export { DEFAULT_REPORT_INTERVAL } from './common.js';
import { DEFAULT_REPORT_INTERVAL } from './common.js';
/** The daemon when no -s is given: Spread's own default, the local unix socket /tmp/4803. */
export const DEFAULT_DAEMON = String(DEFAULT_SPREAD_PORT);

const SERVICES = Object.keys(SERVICE_BY_NAME) as ServiceName[];

export const PIPE_OPTIONS = {
  group: { alias: 'g', type: 'string', repeat: true, describe: 'destination group (one message to all the groups given)' },
  spread: {
    alias: 's',
    type: 'string',
    repeat: true,
    field: 'daemons',
    describe: `daemon: PORT (the unix socket ${UNIX_SOCKET_DIR}/PORT), PORT@HOST, HOST:PORT or ${TLS_DAEMON_FORM}; repeat for failover, first preferred [default: ${DEFAULT_DAEMON}, i.e. ${UNIX_SOCKET_DIR}/${DEFAULT_SPREAD_PORT}]`,
  },
  host: { alias: 'h', type: 'string', describe: "host tag put before each line [default: this machine's host name]" },
  tag: { type: 'boolean', default: true, describe: 'prefix lines with the host tag (--no-tag sends the line alone)' },
  service: { type: 'string', default: 'reliable', field: 'service', describe: `Spread service type: ${SERVICES.join(', ')} (mod_log_spread used reliable)` },
  name: { alias: 'n', type: 'string', field: 'name', describe: 'private name, 1-10 characters [default: derived from the pid]' },
  'group-field': { type: 'string', field: 'field', describe: 'route each line to the group named by this field (1-based, like a %v first in the LogFormat); -g is the fallback' },
  'group-prefix': { type: 'string', empty: true, default: '', describe: 'prefix for routed group names' },
  'group-hash': { type: 'string', field: 'hashBuckets', describe: 'hash the field into N groups PREFIX-0..PREFIX-(N-1) (VhostLogHashSize)' },
  'max-line': { type: 'string', default: DEFAULT_MAX_LINE, field: 'maxLine', describe: 'longer lines are truncated (and counted); at most what one Spread message carries with these groups and host tag' },
  'queue-lines': { type: 'string', default: DEFAULT_QUEUE_LINES, field: 'queueLines', describe: 'lines held while the daemon is slow or away' },
  'queue-bytes': { type: 'string', default: DEFAULT_QUEUE_BYTES, field: 'queueBytes', describe: 'bytes held while the daemon is slow or away (e.g. 32M)' },
  'on-full': {
    type: 'string',
    field: 'onFull',
    describe: `when the queue is full (${OVERFLOW_POLICIES.join(', ')}): drop the newest or oldest lines, or block: stop reading stdin until there is room (not datagrams) [default: block when stdin is a regular file, else drop-newest]`,
  },
  batch: { type: 'boolean', default: false, describe: 'pack queued lines into one message when a backlog exists' },
  'batch-bytes': { type: 'string', default: DEFAULT_BATCH_BYTES, field: 'batchBytes', describe: 'largest batched message (spreadlogd reads 8 KiB by default)' },
  'connect-timeout': { type: 'string', default: DEFAULT_CONNECT_TIMEOUT, field: 'connectTimeout', describe: 'ms to connect and handshake' },
  'stall-timeout': { type: 'string', default: DEFAULT_STALL_TIMEOUT, field: 'stallTimeout', describe: 'ms a daemon may take none of our bytes (with --ack: acknowledge none) before it counts as down' },
  'failback-interval': { type: 'string', default: DEFAULT_FAILBACK_INTERVAL, field: 'failbackInterval', describe: 'ms between tries of the first daemon while on another' },
  'drain-timeout': { type: 'string', default: DEFAULT_DRAIN_TIMEOUT, describe: 'ms to send what is queued at EOF or SIGTERM' },
  'report-interval': { type: 'string', default: DEFAULT_REPORT_INTERVAL, describe: 'ms between drop reports on stderr' },
  metrics: { type: 'string', describe: 'serve the counters in Prometheus text format at http://[HOST:]PORT/metrics (HOST defaults to 127.0.0.1)' },
  ...TLS_CLIENT_OPTIONS,
  ...RELIABLE_OPTIONS,
  ...SYSLOG_OPTIONS,
  ...USER_OPTIONS,
} as const satisfies OptTable;

/** Everything pipe mode runs with, checked: nothing here has touched stdin, a socket or a file. */
export interface PipeConfig {
  /** For the Publisher; `onFull` is left out when not given (the default may depend on stdin). */
  publisher: Omit<ResolvedPublisherOptions, 'onFull' | 'spool'>;
  onFull: OverflowPolicy | undefined;
  /** No -s: the local default, which users often do not mean (see connect-failed). */
  defaultDaemon: boolean;
  router: RouteOptions;
  maxLine: number;
  /** The host tag and its space, or empty with --no-tag. */
  tag: Buffer;
  /** -h, or this machine's name. */
  host: string;
  tagOn: boolean;
  drainTimeout: number;
  reportInterval: number;
  reliable: ReliableConfig;
  syslog: SyslogConfig | undefined;
  /** --metrics: where /metrics listens. */
  metrics: HostPort | undefined;
  /** --user: who to become once the listeners are bound. */
  user: TargetUser | undefined;
}

export const PIPE_HELP = {
  scriptName: PROGRAM,
  usage:
    '$0 -g GROUP [-s DAEMON ...] [options] < lines\n\n' +
    'Publish each line of stdin to Spread groups as "HOST LINE", never blocking the writer:\n' +
    '  CustomLog "|/usr/bin/spread-pipe -g jigdo -s 4803@loghost" combined\n' +
    MODES,
  examples: [
    ['$0 -g jigdo -s 4803@loghost1 -s 4803@loghost2', 'fail over to loghost2, fail back to loghost1'],
    ['$0 -g vhosts --group-field 1 --group-prefix www-', 'LogFormat "%v %h ..." : one group per vhost'],
  ] as Array<[string, string]>,
  epilogue: `On EOF or SIGTERM: drain, disconnect, exit 0. SIGUSR1 prints the counters.\n${EPILOGUE}`,
};

/** Parse and check pipe mode's command line; undefined after --help. */
export async function parseArgs(argv: string[]): Promise<PipeConfig | undefined> {
  const g = await parseCommandLine(argv, PIPE_OPTIONS, PIPE_HELP);
  return g && checkPipeArgs(g);
}

function checkPipeArgs(g: Given): PipeConfig {
  const t = PIPE_OPTIONS;
  const service = usage(t, () => SERVICE_BY_NAME[choiceOption('service', g.str('service') as ServiceName | undefined, 'reliable', SERVICES)]);
  const groups = g.list('group').map((x) => usage(t, () => validateDestination(x), g.label('group')));
  const field = g.int('group-field', 'fields');
  const hash = g.int('group-hash', 'groups');
  if (field !== undefined && field < 1) throw new UsageError(`${g.label('group-field')}: fields count from 1, got 0`);
  if (hash !== undefined && hash < 1) throw new UsageError(`${g.label('group-hash')}: must be at least 1 group, got 0`);
  const sys = parseSyslogArgs(g, service);
  if (groups.length === 0 && field === undefined && !sys?.routes.size) throw new UsageError('at least one -g GROUP (or --group-field, or --route with --syslog) is needed');
  if (hash !== undefined && field === undefined) throw new UsageError('--group-hash needs --group-field');
  const prefix = g.str('group-prefix') ?? '';
  if (prefix.length > MAX_GROUP_NAME - 2 || ![...Buffer.from(prefix, 'latin1')].every(isNameByte)) {
    throw new UsageError(`${g.label('group-prefix')}: "${prefix}" cannot start a group name: at most ${MAX_GROUP_NAME - 2} ASCII letters, digits and punctuation, without spaces, '!', '"' or '#'`);
  }
  const spreads = g.list('spread');
  const daemons: DaemonAddress[] = clientTls(
    g,
    (spreads.length ? spreads : [DEFAULT_DAEMON]).map((x) => usage(t, () => parseDaemonAddress(x), g.label('spread'))),
  );
  const rel = parseReliableArgs(g);
  const host = g.str('host') ?? os.hostname();
  // The tag is the first word of every line: writers file lines by it (--write-split), so it is one word.
  if (g.has('host') && !/^[!-~]+$/.test(host)) throw new UsageError(`${g.label('host')}: the host tag is the first word of every line, so it is printable ASCII without spaces, got ${JSON.stringify(host)}`);
  const tagOn = g.bool('tag');
  const tag = tagOn ? Buffer.from(`${host} `, 'latin1') : Buffer.alloc(0);
  // --ack adds no destination (its markers go alone to our private group, ack.ts).
  const most = Math.max(1, groups.length, sys?.maxRouteGroups ?? 0);
  if (most > MAX_GROUPS_PER_MESSAGE) {
    throw new UsageError(`${sys && sys.maxRouteGroups > MAX_GROUPS_PER_MESSAGE ? g.label('route') : g.label('group')}: Spread sends one message to at most ${MAX_GROUPS_PER_MESSAGE} groups, got ${most}`);
  }
  const splitter = usage(t, () => resolveSplitterOptions({ maxLine: g.size('max-line') }));
  const ceiling = SAFE_MESSAGE_BODY_LEN - tag.length - 1 - 32 * most;
  if (splitter.maxLine > ceiling) {
    throw new UsageError(
      `${g.label('max-line')}: ${g.str('max-line')} is too long: Spread carries at most ${SAFE_MESSAGE_BODY_LEN} bytes per message (the line, its newline and host tag, plus 32 for each of its groups); with ${most} group(s) and the host tag "${tag.toString('latin1').trimEnd()}" a line can be at most ${ceiling} bytes`,
    );
  }
  const onFullText = g.str('on-full');
  const publisher = usage(t, () =>
    resolvePublisherOptions({
      daemons,
      name: g.str('name'),
      connectTimeout: g.int('connect-timeout', 'milliseconds'),
      stallTimeout: g.int('stall-timeout', 'milliseconds'),
      failbackInterval: g.int('failback-interval', 'milliseconds'),
      queueLines: g.int('queue-lines', 'lines'),
      queueBytes: g.size('queue-bytes'),
      onFull: onFullText as OverflowPolicy | undefined,
      batch: g.bool('batch'),
      batchBytes: g.size('batch-bytes'),
      ack: rel.ack,
    }),
  );
  if (rel.ack && publisher.name !== undefined) throw new UsageError('--name cannot be used with --ack: the private name identifies the sequence stream');
  const drainTimeout = g.int('drain-timeout', 'milliseconds') ?? DEFAULT_DRAIN_TIMEOUT;
  const reportInterval = g.int('report-interval', 'milliseconds') ?? DEFAULT_REPORT_INTERVAL;
  if (reportInterval < 1) throw new UsageError(`${g.label('report-interval')}: must be at least 1 millisecond, got 0`);
  const router: RouteOptions = { groups, field, prefix, hashBuckets: hash, send: { service } };
  // Prepared once here, so a bad route (too many groups, a bad name) is a usage error, not a crash later.
  usage(t, () => new Router(router));
  const { onFull, spool: _spool, ...rest } = publisher;
  return {
    publisher: rest,
    onFull: onFullText === undefined ? undefined : onFull,
    defaultDaemon: spreads.length === 0,
    router,
    maxLine: splitter.maxLine,
    tag,
    host,
    tagOn,
    drainTimeout,
    reportInterval,
    reliable: rel,
    syslog: sys,
    metrics: g.has('metrics') ? usage(t, () => parseHostPort(g.str('metrics')!), g.label('metrics')) : undefined,
    user: parseUser(g),
  };
}

export async function run(args: string[]): Promise<number> {
  const cfg = await parseArgs(args);
  if (!cfg) return EXIT_OK;
  const router = new Router(cfg.router);
  const { tag, maxLine } = cfg;
  const rel = cfg.reliable;
  // A spool that cannot be made (EACCES, a file in the way) stops the start, before stdin is read;
  // only one locked by a live spread-pipe is waited for (reading stdin meanwhile).
  // With --user it is opened after the drop, as that user: it grows new segments as it goes.
  let spool: Spool | undefined;
  let firstTry = rel.spool && !cfg.user ? openSpool(rel.spool, rel.spoolMax) : undefined;
  if (firstTry && firstTry !== 'locked') spool = firstTry;

  // stdin is read from here on, whatever happens next: lines wait in `early` until the publisher exists.
  let publisher: Publisher | undefined;
  let gaps: GapNotices | undefined;
  const early = new EarlyLines(cfg.publisher.queueLines, cfg.publisher.queueBytes);
  // Datagrams: a socket cannot be told to wait, so under --on-full block a full queue still drops them.
  const push = (body: Buffer, route: ReturnType<Router['route']>): void => {
    gaps?.saw(route);
    if (publisher) publisher.offer(body, route);
    else early.push(body, route);
  };
  const splitter = new LineSplitter((line) => {
    const route = router.route(line);
    gaps?.saw(route);
    // The hot path: the queue copies tag, line and LF into place, no body is built.
    if (publisher) publisher.pushLine(tag, line, route);
    else early.push(Buffer.concat([tag, line, NL]), route);
  }, maxLine);
  // With --syslog: bind first (a failure exits before anything else starts); stdin only with --stdin.
  const sys = cfg.syslog;
  // Bound before stdin is read, like --syslog: a port in use stops the start (exit 1).
  const metrics = cfg.metrics && (await startMetrics(cfg.metrics));
  const syslog = sys && (await startSyslogInput(sys, { localHost: cfg.host, tag: cfg.tagOn, maxLine, router, push, log, reportInterval: cfg.reportInterval }));
  if (cfg.user) {
    // What needs root is open: the listeners. Our unix sockets go to the user (to be removed at exit), and a spool directory made now.
    const sockets = (syslog?.listener.bound ?? []).filter((b) => b.startsWith('unix:')).map((b) => ({ path: b.slice(5), keepGroup: sys!.listener.socketGroup !== undefined }));
    try {
      becomeUser(cfg.user, [...sockets, ...(rel.spool ? spoolHandover(rel.spool) : [])]);
    } catch (e) {
      syslog?.close();
      await metrics?.close();
      throw e;
    }
    if (rel.spool) firstTry = openSpool(rel.spool, rel.spoolMax, cfg.user);
    if (firstTry && firstTry !== 'locked') spool = firstTry;
  }
  // Once the start went well (a failing one says one line): about to read and talk to the network.
  warnIfRoot(cfg.user);
  const readsStdin = !sys || sys.stdin;
  const onFull = cfg.onFull ?? defaultOnFull(readsStdin && stdinIsFile());
  const stdinFlow = new InputFlow();
  const input = sys ? untilStopped(sys, () => readInput(splitter, stdinFlow), log) : readInput(splitter, stdinFlow);
  if (firstTry === 'locked') spool = await waitForSpool(rel.spool!, rel.spoolMax, cfg.drainTimeout + SPOOL_LOCK_GRACE);
  const carried = spool?.unread ?? 0;

  publisher = new Publisher({ ...cfg.publisher, onFull, spool });
  const pub = publisher;
  const report = new Reporter(publisher, splitter, cfg.reportInterval, spool, carried, cfg.publisher.daemons, cfg.defaultDaemon);
  publisher.on('event', (e: PublisherEvent) => {
    if (e.type === 'full') stdinFlow.stop();
    else if (e.type === 'room') stdinFlow.go();
    else report.event(e);
  });
  if (rel.gapNotice) {
    gaps = new GapNotices(publisher, cfg.tagOn ? cfg.host : undefined, router.fallback, () => spool !== undefined || pub.queued.lines < cfg.publisher.queueLines / 2);
  }
  early.replay(publisher);
  publisher.start();
  if (metrics) {
    pipeMetrics(metrics.registry, { publisher, splitter, spool, carried });
    if (syslog) syslogMetrics(metrics.registry, syslog.bridge);
  }

  process.on('SIGUSR1', () => log(`counters: ${report.summary()}`));
  process.on('SIGHUP', () => {}); // a piped logger outlives its terminal
  await input;
  syslog?.close();
  splitter.end();
  gaps?.send();
  gaps?.stop();
  // At the end of a file under block nothing waits on us: send the whole backlog while it goes out.
  await publisher.close(cfg.drainTimeout, { whileSending: onFull === 'block' && stdinFlow.ended });
  spool?.close();
  report.stop();
  await metrics?.close();
  log(`exit: ${report.summary()}`);
  return EXIT_OK;
}

/** fd 0 is a regular file (`< access.log.1`), not a pipe, socket or terminal. */
function stdinIsFile(): boolean {
  try {
    return fs.fstatSync(0).isFile();
  } catch {
    return false;
  }
}

/** --on-full block: stdin paused while the queue is full; stopped for good at SIGTERM/SIGINT. */
class InputFlow {
  ended = false;
  private stdin: NodeJS.ReadStream | undefined;
  private waiting = false;
  private done = false;

  attach(stdin: NodeJS.ReadStream): void {
    this.stdin = stdin;
    if (this.waiting) stdin.pause();
  }

  stop(): void {
    this.waiting = true;
    this.stdin?.pause();
  }

  go(): void {
    this.waiting = false;
    if (!this.done) this.stdin?.resume();
  }

  /** Read no more, whatever the queue says. */
  finish(): void {
    this.done = true;
    this.stdin?.pause();
  }
}

/** Read stdin into the splitter from now on; resolves at EOF, on a read error, or on SIGTERM/SIGINT. */
function readInput(splitter: LineSplitter, flow: InputFlow): Promise<void> {
  return new Promise<void>((resolve) => {
    const stdin = process.stdin;
    stdin.on('data', (chunk: Buffer) => splitter.write(chunk));
    flow.attach(stdin);
    stdin.once('end', () => {
      flow.ended = true;
      resolve();
    });
    stdin.once('error', (e) => {
      log(`stdin: ${e.message}`);
      resolve();
    });
    process.once('SIGTERM', () => {
      flow.finish();
      resolve();
    });
    process.once('SIGINT', () => {
      flow.finish();
      resolve();
    });
  });
}

/** What goes to stderr (Apache's error log): state changes and rate-limited drop reports. */
class Reporter {
  private pending: Partial<Record<string, number>> = {};
  private timer: NodeJS.Timeout | undefined;
  private down = false;
  private lastError = '';
  /** Why the last message refused by the protocol rules was (told with the next drop report). */
  private lastRejected = '';

  constructor(
    private readonly publisher: Publisher,
    private readonly splitter: LineSplitter,
    private readonly interval: number,
    private readonly spool?: Spool,
    private readonly carried = 0,
    /** The daemons, and whether -s named them: a local-socket failure is explained once. */
    private readonly daemons: readonly DaemonAddress[] = [],
    private readonly defaultDaemon = false,
  ) {}
  private hinted = false;

  event(e: PublisherEvent): void {
    switch (e.type) {
      case 'connected':
        if (this.down) log(`connected to ${e.daemon} as ${e.privateGroup}`);
        this.down = false;
        break;
      case 'connect-failed':
        this.lastError = `${e.daemon}: ${e.error}`;
        if (!this.down) log(`cannot reach ${e.daemon}: ${e.error}; queueing and retrying${this.hint(e.daemon)}`);
        this.down = true;
        break;
      case 'disconnected':
        log(`lost ${e.daemon}: ${e.error}${e.lost ? ` (${e.lost} lines lost in flight)` : ''}`);
        this.down = true;
        break;
      case 'failback':
        log(`back on ${e.daemon}`);
        break;
      case 'gave-up':
        log(`giving up: ${e.error}`);
        break;
      case 'drop':
        if (e.error) this.lastRejected = e.error;
        this.pending[e.reason] = (this.pending[e.reason] ?? 0) + e.lines;
        this.timer ??= setTimeout(() => this.flushDrops(), this.interval);
        break;
      case 'connecting':
        break;
      case 'new-stream':
        log(`--ack: new stream name ${e.name} (${NEW_STREAM_WHY[e.why]})${e.abandoned ? `; ${e.abandoned} unacknowledged lines resent under it may repeat` : ''}`);
        break;
      case 'spool-error':
        log(`spool: ${e.message}`);
        break;
    }
  }

  private hint(daemon: string): string {
    const d = this.daemons.find((a) => a.label === daemon);
    const h = d ? localSocketHint(d, !this.defaultDaemon) : '';
    if (!h || this.hinted) return '';
    this.hinted = true;
    return h;
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    // The exit line counts rejected lines but cannot say why: say it before.
    if (this.lastRejected) this.flushDrops();
  }

  summary(): string {
    const c: Counters = this.publisher.counters;
    const q = this.publisher.queued;
    const d = Object.entries(c.dropped)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    return `read=${this.splitter.lines} truncated=${this.splitter.truncated} sent_lines=${c.linesSent} sent_messages=${c.messagesSent} queued=${q.lines} dropped: ${d} notices=${c.notices} connects=${c.connects} failovers=${c.failovers} failbacks=${c.failbacks}${reliableSummary(this.publisher, this.spool, this.carried)}`;
  }

  private flushDrops(): void {
    this.timer = undefined;
    const parts = Object.entries(this.pending).map(([k, v]) => `${k}=${v}`);
    this.pending = {};
    const why = this.lastRejected ? `; rejected: ${this.lastRejected}` : '';
    this.lastRejected = '';
    if (parts.length) log(`dropped lines: ${parts.join(' ')}${why}${this.down && this.lastError ? `; daemon unreachable (${this.lastError})` : ''}`);
  }
}
