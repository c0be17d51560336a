/**
 * Pipe mode: `CustomLog "|spread-pipe -g jigdo -s 4803@loghost" combined`.
 * stdin is read at full speed whatever the daemon does; each line becomes
 * `HOST SP LINE LF` in the publisher's bounded queue.
 */
import fs from 'node:fs';
import os from 'node:os';
import yargs from 'yargs';
import { EPILOGUE, EXIT_OK, PROGRAM, UsageError, log, usage } from './common.js';
import { failUsage } from './common.js';
import { parseSize } from './size.js';
import { type Counters, DEFAULT_BATCH_BYTES, DEFAULT_CONNECT_TIMEOUT, DEFAULT_FAILBACK_INTERVAL, DEFAULT_STALL_TIMEOUT, Publisher, type PublisherEvent } from '../publisher.js';
import { DEFAULT_QUEUE_BYTES, DEFAULT_QUEUE_LINES, OVERFLOW_POLICIES, type OverflowPolicy, defaultOnFull } from '../queue.js';
import { DEFAULT_MAX_LINE, LineSplitter } from '../reader.js';
import { Router } from '../routing.js';
import { parseDaemonAddress, validateDestination, validatePrivateName } from '../spread/address.js';
import { SAFE_MESSAGE_BODY_LEN, SERVICE_BY_NAME, type ServiceName } from '../spread/constants.js';
import { EarlyLines, GapNotices, RELIABLE_OPTIONS, SPOOL_LOCK_GRACE, checkReliableArgs, openSpool, reliableSummary } from './pipe-reliable.js';
import { type Spool } from '../spool.js';
import { SYSLOG_OPTIONS, checkSyslogArgs, startSyslogInput, untilStopped } from '../syslog/setup.js';

const NL = Buffer.from('\n');

/** @default 2000 — Apache waits a few seconds for a piped logger after SIGTERM. */
export const DEFAULT_DRAIN_TIMEOUT = 2000;
export { DEFAULT_REPORT_INTERVAL } from './common.js';
import { DEFAULT_REPORT_INTERVAL } from './common.js';

const positive = (name: string, v: number | undefined, min = 1): number | undefined => {
  if (v === undefined) return undefined;
  if (!Number.isInteger(v) || v < min) throw new UsageError(`${name} must be an integer >= ${min}, got ${v}`);
  return v;
};

export async function run(args: string[]): Promise<number> {
  const argv = await yargs(args)
    .scriptName(PROGRAM)
    .usage(
      '$0 -g GROUP [-s DAEMON ...] [options] < lines\n\n' +
        'Publish each line of stdin to Spread groups as "HOST LINE", never blocking the writer:\n' +
        '  CustomLog "|/usr/bin/spread-pipe -g jigdo -s 4803@loghost" combined',
    )
    .option('group', { alias: 'g', type: 'string', array: true, describe: 'destination group (repeatable: one message to several groups)' })
    .option('spread', { alias: 's', type: 'string', array: true, describe: 'daemon: PORT (unix /tmp/PORT), PORT@HOST or HOST:PORT; repeat for failover, first preferred [default: 4803]' })
    .option('host', { alias: 'h', type: 'string', describe: "host tag put before each line [default: this machine's host name]" })
    .option('tag', { type: 'boolean', default: true, describe: 'prefix lines with the host tag (--no-tag sends the line alone)' })
    .option('service', { choices: Object.keys(SERVICE_BY_NAME), default: 'reliable', describe: 'Spread service type (mod_log_spread used reliable)' })
    .option('name', { alias: 'n', type: 'string', describe: 'private name, 1-10 characters [default: derived from the pid]' })
    .option('group-field', { type: 'number', describe: 'route each line to the group named by this field (1-based, like a %v first in the LogFormat); -g is the fallback' })
    .option('group-prefix', { type: 'string', default: '', describe: 'prefix for routed group names' })
    .option('group-hash', { type: 'number', describe: 'hash the field into N groups PREFIX-0..PREFIX-(N-1) (VhostLogHashSize)' })
    .option('max-line', { type: 'string', default: String(DEFAULT_MAX_LINE), describe: 'longer lines are truncated (and counted)' })
    .option('queue-lines', { type: 'number', default: DEFAULT_QUEUE_LINES, describe: 'lines held while the daemon is slow or away' })
    .option('queue-bytes', { type: 'string', default: String(DEFAULT_QUEUE_BYTES), describe: 'bytes held while the daemon is slow or away (e.g. 32M)' })
    .option('on-full', { choices: OVERFLOW_POLICIES as readonly string[], describe: 'when the queue is full: drop the newest or oldest lines, or block: stop reading stdin until there is room (not datagrams) [default: block when stdin is a regular file, else drop-newest]' })
    .option('batch', { type: 'boolean', default: false, describe: 'pack queued lines into one message when a backlog exists' })
    .option('batch-bytes', { type: 'string', default: String(DEFAULT_BATCH_BYTES), describe: 'largest batched message (spreadlogd reads 8 KiB by default)' })
    .option('connect-timeout', { type: 'number', default: DEFAULT_CONNECT_TIMEOUT, describe: 'ms to connect and handshake' })
    .option('stall-timeout', { type: 'number', default: DEFAULT_STALL_TIMEOUT, describe: 'ms a daemon may take none of our bytes (with --ack: acknowledge none) before it counts as down' })
    .option('failback-interval', { type: 'number', default: DEFAULT_FAILBACK_INTERVAL, describe: 'ms between tries of the first daemon while on another' })
    .option('drain-timeout', { type: 'number', default: DEFAULT_DRAIN_TIMEOUT, describe: 'ms to send what is queued at EOF or SIGTERM' })
    .option('report-interval', { type: 'number', default: DEFAULT_REPORT_INTERVAL, describe: 'ms between drop reports on stderr' })
    .options(RELIABLE_OPTIONS)
    .options(SYSLOG_OPTIONS)
    .example('$0 -g jigdo -s 4803@loghost1 -s 4803@loghost2', 'fail over to loghost2, fail back to loghost1')
    .example('$0 -g vhosts --group-field 1 --group-prefix www-', 'LogFormat "%v %h ..." : one group per vhost')
    .epilogue(`On EOF or SIGTERM: drain, disconnect, exit 0. SIGUSR1 prints the counters.\n${EPILOGUE}`)
    .help('help')
    .version(false)
    .strict()
    .fail(failUsage)
    .parseAsync();

  // Every check happens here, before stdin is touched.
  const groups = usage(() => (argv.group ?? []).map((g) => validateDestination(String(g))));
  const field = positive('--group-field', argv['group-field']);
  const hash = positive('--group-hash', argv['group-hash']);
  const sys = usage(() => checkSyslogArgs(argv, parseSize));
  if (groups.length === 0 && field === undefined && !sys?.routes.size) throw new UsageError('at least one -g GROUP (or --group-field, or --route with --syslog) is needed');
  if (hash !== undefined && field === undefined) throw new UsageError('--group-hash needs --group-field');
  if (argv['group-prefix'] && !/^[$-~]*$/.test(argv['group-prefix'].replace(/#/g, ' '))) throw new UsageError(`bad --group-prefix "${argv['group-prefix']}"`);
  const daemons = usage(() => (argv.spread ?? ['4803']).map((s) => parseDaemonAddress(String(s))));
  if (argv.name !== undefined) usage(() => validatePrivateName(argv.name!));
  const maxLine = parseSize(argv['max-line'], '--max-line');
  const batchBytes = parseSize(argv['batch-bytes'], '--batch-bytes');
  const queueBytes = parseSize(argv['queue-bytes'], '--queue-bytes');
  const tag = argv.tag ? Buffer.from(`${argv.host ?? os.hostname()} `, 'latin1') : Buffer.alloc(0);
  const rel = checkReliableArgs(argv);
  // With --ack our own private group is one more destination.
  const groupBytes = 32 * (Math.max(1, groups.length) + (rel.ack ? 1 : 0));
  if (maxLine < 1 || maxLine + tag.length + 1 + groupBytes > SAFE_MESSAGE_BODY_LEN) {
    throw new UsageError(`--max-line must be 1..${SAFE_MESSAGE_BODY_LEN - tag.length - 1 - groupBytes} with these groups and host tag`);
  }
  for (const [k, v] of [['queue-lines', argv['queue-lines']], ['connect-timeout', argv['connect-timeout']], ['stall-timeout', argv['stall-timeout']], ['failback-interval', argv['failback-interval']], ['report-interval', argv['report-interval']]] as const) {
    positive(`--${k}`, v);
  }
  positive('--drain-timeout', argv['drain-timeout'], 0);
  const router = usage(
    () => new Router({ groups, field, prefix: argv['group-prefix'], hashBuckets: hash, send: { service: SERVICE_BY_NAME[argv.service as ServiceName] } }),
  );

  // stdin is read from here on, whatever happens next: lines wait in `early` until the publisher exists.
  let publisher: Publisher | undefined;
  let gaps: GapNotices | undefined;
  const early = new EarlyLines(argv['queue-lines'], queueBytes);
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
  const syslog = sys && (await startSyslogInput(sys, { localHost: argv.host ?? os.hostname(), tag: argv.tag, maxLine, router, push, log, reportInterval: argv['report-interval'] }));
  const readsStdin = !sys || sys.stdin;
  const onFull = (argv['on-full'] as OverflowPolicy | undefined) ?? defaultOnFull(readsStdin && stdinIsFile());
  const stdinFlow = new InputFlow();
  const input = sys ? untilStopped(sys, () => readInput(splitter, stdinFlow), log) : readInput(splitter, stdinFlow);
  let spool: Spool | undefined;
  if (rel.spool) spool = await openSpool(rel.spool, rel.spoolMax, argv['drain-timeout'] + SPOOL_LOCK_GRACE);
  const carried = spool?.unread ?? 0;

  publisher = new Publisher({
    daemons,
    name: argv.name,
    connectTimeout: argv['connect-timeout'],
    stallTimeout: argv['stall-timeout'],
    failbackInterval: argv['failback-interval'],
    queueLines: argv['queue-lines'],
    queueBytes,
    onFull,
    batch: argv.batch,
    batchBytes,
    ack: rel.ack,
    spool,
  });
  const pub = publisher;
  const report = new Reporter(publisher, splitter, argv['report-interval'], spool, carried);
  publisher.on('event', (e: PublisherEvent) => {
    if (e.type === 'full') stdinFlow.stop();
    else if (e.type === 'room') stdinFlow.go();
    else report.event(e);
  });
  if (rel.gapNotice) {
    gaps = new GapNotices(publisher, argv.tag ? tag.toString('latin1', 0, tag.length - 1) : undefined, router.fallback, () => spool !== undefined || pub.queued.lines < argv['queue-lines'] / 2);
  }
  early.replay(publisher);
  publisher.start();

  process.on('SIGUSR1', () => log(`counters: ${report.summary()}`));
  process.on('SIGHUP', () => {}); // a piped logger outlives its terminal
  await input;
  syslog?.close();
  splitter.end();
  gaps?.send();
  gaps?.stop();
  // At the end of a file under block nothing waits on us: send the whole backlog while it goes out.
  await publisher.close(argv['drain-timeout'], { whileSending: onFull === 'block' && stdinFlow.ended });
  spool?.close();
  report.stop();
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
  ) {}

  event(e: PublisherEvent): void {
    switch (e.type) {
      case 'connected':
        if (this.down) log(`connected to ${e.daemon} as ${e.privateGroup}`);
        this.down = false;
        break;
      case 'connect-failed':
        this.lastError = `${e.daemon}: ${e.error}`;
        if (!this.down) log(`cannot reach ${e.daemon}: ${e.error}; queueing and retrying`);
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
        log(`--ack: new stream name ${e.name}${e.abandoned ? ` (${e.abandoned} unacknowledged lines resent under it may repeat)` : ''}`);
        break;
      case 'spool-error':
        log(`spool: ${e.message}`);
        break;
    }
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
