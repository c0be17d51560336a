/**
 * `spread-pipe write`: the central log writer as a plain Spread client, for
 * real multi-daemon Spread segments (and the built-in daemon): joins the
 * groups on a daemon of the -s list and writes what arrives, through the same
 * routes and writer as the daemon's own --write (src/write/, src/writer.ts).
 * A drop-in replacement for spreadlogd 2.0.1 (`--spreadlogd-conf`).
 *
 * Over 300 lines on purpose: one concern, write mode's wiring (its parseArgs,
 * the session, signals and the stderr report).
 */
import path from 'node:path';
import { EPILOGUE, EXIT_FAILURE, EXIT_OK, MODES, PROGRAM, UsageError, log } from './common.js';
import { type Given, type OptTable, parseCommandLine, usage } from './args.js';
import { TLS_CLIENT_OPTIONS, TLS_DAEMON_FORM, clientTls } from './tls-args.js';
import { type DaemonAddress, parseDaemonAddress, validateGroupName, validatePrivateName } from '../spread/address.js';
import { DEFAULT_CONNECT_TIMEOUT } from '../spread/client.js';
import { DEFAULT_SPREAD_PORT, MAX_MESSAGE_BODY_LEN, UNIX_SOCKET_DIR } from '../spread/constants.js';
import { exponentialBackoff } from '../backoff.js';
import { errorMessage } from '../errors.js';
import { DEFAULT_MAX_OPEN_FILES, LogWriter, resolveWriterOptions, type WriterEvent } from '../writer.js';
import { WriteDedup } from '../write-dedup.js';
import { FileLocks } from '../write/file-lock.js';
import { PosixRegexError, compileEre } from '../write/posix-regex.js';
import type { Route, RouteSpec } from '../write/routes.js';
import { DEFAULT_FAILBACK_INTERVAL, DEFAULT_LIVENESS_INTERVAL, type SessionEvent, WriteSession, gapRecord } from '../write/session.js';
import { ConfError, SPREADLOGD_BUFFER_SIZE, readSpreadlogdConf, type SpreadlogdConf } from '../write/spreadlogd-conf.js';
import { buildRoutes, routesByGroup } from '../write/targets.js';
import type { RewriteStyle } from '../write/timestamp.js';
import { PathTemplate, Strftime, StrftimeError } from '../write/strftime.js';
import type { PipeEvent } from '../write/pipe-log.js';
import type { Frame } from '../spread/decoder.js';
import { type HostPort, counter, gauge, parseHostPort } from '../metrics.js';
import { startMetrics, writerMetrics } from './metrics.js';
import { type TargetUser, USER_OPTIONS, becomeUser, parseUser } from './user.js';

const DEFAULT_DAEMON = String(DEFAULT_SPREAD_PORT);
/**
 * Appends wait this long for more before one write(2) (LogWriter's
 * flushDelay): lines reach the file within it, and a stream of one-line
 * messages from real Spread costs one write per few hundred lines, not one
 * per line. SIGTERM flushes everything first. @default 10 ms
 */
export const FLUSH_DELAY = 10;
/** A kind of bad input is reported at most this often (with the count since). @default 10 s */
export const REPORT_INTERVAL = 10_000;

export const WRITE_OPTIONS = {
  spread: {
    alias: 's',
    type: 'string',
    repeat: true,
    describe: `daemon: PORT (the unix socket ${UNIX_SOCKET_DIR}/PORT), PORT@HOST, HOST:PORT or ${TLS_DAEMON_FORM}; repeat for the other daemons of the segment (failover, in order) [default: ${DEFAULT_DAEMON}, or the Port of each Spread block of --spreadlogd-conf]`,
  },
  write: { alias: 'w', type: 'string', repeat: true, describe: "GROUP=FILE: append GROUP's messages to FILE; strftime fields (%Y/%m/%d) switch file at their boundary; FILE '|program' pipes to a program" },
  'write-split': { type: 'string', repeat: true, describe: 'GROUP=DIR: one file DIR/<first word>.log per host tag, the line whole (as --daemon --write-split)' },
  'write-vhost': { type: 'string', repeat: true, describe: "GROUP=DIR: spreadlogd's VhostDir: one file DIR/<first word>, the first word and its space removed" },
  match: { type: 'string', repeat: true, describe: "GROUP=REGEX: write GROUP's messages only when one of its REGEXes matches (POSIX extended, as spreadlogd's Match)" },
  'rewrite-timestamp': { type: 'string', repeat: true, describe: "GROUP=clf or GROUP=FORMAT: replace the first [...] of each message with the time of receipt (CommonLogFormat, or a strftime FORMAT)" },
  'spreadlogd-conf': { type: 'string', describe: 'read the groups, files and daemons of an existing spreadlogd.conf (PerlLog, PythonLog, LoadModule are refused)' },
  'buffer-size': { type: 'string', describe: `largest message written; larger ones are dropped and counted [default: BufferSize of --spreadlogd-conf, else ${SPREADLOGD_BUFFER_SIZE} with it, else ${MAX_MESSAGE_BODY_LEN}]` },
  utc: { type: 'boolean', default: false, describe: 'strftime paths and rewritten timestamps in UTC (default: local time)' },
  'gap-notice': { type: 'boolean', default: false, describe: 'after a lost session, also write the gap record into each file of its groups' },
  dedup: { type: 'boolean', default: true, describe: 'drop lines a --ack publisher sent twice; state in FILE.seen / DIR/.seen (--no-dedup: write all)' },
  lock: { type: 'boolean', default: true, describe: 'lock each file (.NAME.lock beside it) so that two writers never append to one (--no-lock: do not)' },
  'max-open-files': { type: 'string', default: DEFAULT_MAX_OPEN_FILES, field: 'maxOpenFiles', describe: 'files kept open at once; the least recently used is closed' },
  name: { alias: 'n', type: 'string', describe: 'private name, 1-10 characters [default: derived from the pid]' },
  'connect-timeout': { type: 'string', default: DEFAULT_CONNECT_TIMEOUT, describe: 'milliseconds to connect and handshake' },
  'failback-interval': { type: 'string', default: DEFAULT_FAILBACK_INTERVAL, describe: 'ms between tries of the first -s daemon while subscribed on another (0: stay); the switch is a gap record' },
  liveness: { type: 'string', default: DEFAULT_LIVENESS_INTERVAL, describe: 'ms of silence before the daemon is probed (a message to our private group); as long again with nothing back and it is taken as hung and left (0: off)' },
  'report-interval': { type: 'string', default: REPORT_INTERVAL, describe: 'milliseconds between two reports of the same kind of bad input' },
  metrics: { type: 'string', describe: 'serve the counters in Prometheus text format at http://[HOST:]PORT/metrics (HOST defaults to 127.0.0.1)' },
  ...USER_OPTIONS,
  ...TLS_CLIENT_OPTIONS,
} as const satisfies OptTable;

export interface SessionConfig {
  daemons: DaemonAddress[];
  routes: RouteSpec[];
}

export interface WriteConfig {
  sessions: SessionConfig[];
  bufferSize: number;
  utc: boolean;
  gapNotice: boolean;
  dedup: boolean;
  lock: boolean;
  maxOpenFiles: number;
  name: string | undefined;
  connectTimeout: number;
  reportInterval: number;
  failbackInterval: number;
  liveness: number;
  defaultDaemon: boolean;
  /** --metrics: where /metrics listens. */
  metrics: HostPort | undefined;
  /** --user: who to become once --metrics is bound; every file is opened as that user. */
  user: TargetUser | undefined;
}

function assignment(g: Given, opt: string, text: string, what: string): [string, string] {
  const i = text.indexOf('=');
  if (i <= 0 || i === text.length - 1) throw new UsageError(`${g.label(opt)}: expected GROUP=${what}, got ${JSON.stringify(text)}`);
  return [usage(g.table, () => validateGroupName(text.slice(0, i)), g.label(opt)), text.slice(i + 1)];
}

/** Run `fn`; an error of class `kind` (a bad pattern or format the user gave) becomes a usage error at `where`. */
function asUsage<T>(where: string, kind: new (...a: never[]) => Error, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof kind) throw new UsageError(`${where}: ${e.message}`);
    throw e;
  }
}

function regex(text: string, where: string): RegExp {
  return asUsage(where, PosixRegexError, () => compileEre(text));
}

function groupName(group: string, where: string): string {
  try {
    return validateGroupName(group);
  } catch (e) {
    throw new UsageError(`${where}: ${errorMessage(e)}`);
  }
}

/** strftime fields of a path, checked now: a typo is a usage error, not a file named %Q. */
function checkTemplate(file: string, where: string): void {
  if (!file.startsWith('|')) asUsage(where, StrftimeError, () => new PathTemplate(file));
}

function checkFormat(format: string, where: string): void {
  asUsage(where, StrftimeError, () => new Strftime(format));
}

/** The routes and daemons of a spreadlogd.conf, each Log block one route. */
function confSessions(conf: SpreadlogdConf, file: string): SessionConfig[] {
  return conf.spreads.map((sp) => {
    const daemon = usage({}, () => parseDaemonAddress(sp.daemon), `${file}:${sp.line}: Port`);
    const routes = sp.logs.map((l): RouteSpec => {
      const where = `${file}:${l.line}`;
      const group = groupName(l.group, where);
      const matches = l.matches.map((m) => regex(m, `${where}: Match`));
      const rewrite: RewriteStyle | undefined = l.rewrite;
      if (rewrite?.kind === 'format') checkFormat(rewrite.format, `${where}: RewriteTimestamp`);
      // VhostDir wins over File, as in spreadlogd (which requires File there and never opens it).
      if (l.vhostDir !== undefined) return { group, kind: 'vhost', target: path.resolve(l.vhostDir), matches, rewrite, source: `${where} (VhostDir ${l.vhostDir})` };
      checkTemplate(l.file!, `${where}: File`);
      const target = l.file!.startsWith('|') ? l.file! : path.resolve(l.file!);
      return { group, kind: 'file', target, matches, rewrite, source: `${where} (File ${l.file})` };
    });
    return { daemons: [daemon], routes };
  });
}

/** Parse and check write's command line; undefined after --help. */
export async function parseArgs(argv: string[]): Promise<WriteConfig | undefined> {
  const t = WRITE_OPTIONS;
  const g = await parseCommandLine(argv, t, {
    scriptName: `${PROGRAM} write`,
    usage: `$0 -s DAEMON [-s DAEMON ...] --write GROUP=FILE | --write-split GROUP=DIR | --spreadlogd-conf FILE [options]\n\nJoin Spread groups on a daemon (real Spread 3.x/4.x/5.x or ${PROGRAM} --daemon) and write what arrives to files: the central log writer, in place of spreadlogd.\n${MODES}`,
    examples: [
      ['$0 -s 4803@loghost1 -s 4803@loghost2 --write-split jigdo=/var/log/jigdo', 'one file per web server, failing over between two daemons'],
      ["$0 -s 4803 --write 'jigdo=/var/log/jigdo/%Y/%m/%d/access.log'", 'a new file each day (local time; --utc for UTC)'],
      ['$0 --spreadlogd-conf /etc/spreadlogd.conf', 'what spreadlogd did with that file'],
    ],
    epilogue: `Signals: SIGHUP reopens the log files at once (logrotate), SIGUSR1 prints lines and bytes per file and drops by reason, SIGTERM flushes and exits.\n${EPILOGUE}`,
  });
  if (!g) return undefined;

  const cli: RouteSpec[] = [];
  for (const w of g.list('write')) {
    const [group, file] = assignment(g, 'write', w, 'FILE');
    checkTemplate(file, `${g.label('write')} ${w}`);
    cli.push({ group, kind: 'file', target: file.startsWith('|') ? file : path.resolve(file), matches: [], source: `${g.label('write')} ${w}` });
  }
  for (const w of g.list('write-split')) {
    const [group, dir] = assignment(g, 'write-split', w, 'DIR');
    cli.push({ group, kind: 'split', target: path.resolve(dir), matches: [], source: `--write-split ${w}` });
  }
  for (const w of g.list('write-vhost')) {
    const [group, dir] = assignment(g, 'write-vhost', w, 'DIR');
    cli.push({ group, kind: 'vhost', target: path.resolve(dir), matches: [], source: `--write-vhost ${w}` });
  }
  for (const m of g.list('match')) {
    const [group, re] = assignment(g, 'match', m, 'REGEX');
    const routes = cli.filter((r) => r.group === group);
    if (!routes.length) throw new UsageError(`--match ${m}: no --write, --write-split or --write-vhost for group ${group}`);
    const compiled = regex(re, `--match ${m}`);
    for (const r of routes) r.matches.push(compiled);
  }
  for (const m of g.list('rewrite-timestamp')) {
    const [group, style] = assignment(g, 'rewrite-timestamp', m, 'clf|FORMAT');
    const routes = cli.filter((r) => r.group === group);
    if (!routes.length) throw new UsageError(`--rewrite-timestamp ${m}: no --write, --write-split or --write-vhost for group ${group}`);
    if (routes.some((r) => r.rewrite)) throw new UsageError(`--rewrite-timestamp given twice for group ${group}`);
    const rw: RewriteStyle = style === 'clf' || style === 'CommonLogFormat' ? { kind: 'clf' } : { kind: 'format', format: style };
    if (rw.kind === 'format') checkFormat(rw.format, `--rewrite-timestamp ${m}`);
    for (const r of routes) r.rewrite = rw;
  }

  const confFile = g.str('spreadlogd-conf');
  let conf: SpreadlogdConf | undefined;
  if (confFile !== undefined) {
    try {
      conf = readSpreadlogdConf(confFile);
    } catch (e) {
      if (e instanceof ConfError) throw new UsageError(`--spreadlogd-conf ${e.message}`);
      throw e;
    }
  }
  const spreads = g.list('spread');
  const daemons = clientTls(
    g,
    spreads.map((x) => usage(t, () => parseDaemonAddress(x), g.label('spread'))),
  );
  let sessions: SessionConfig[];
  if (conf) {
    sessions = confSessions(conf, confFile!);
    if (daemons.length) {
      // -s names the segment's daemons for a conf of one Spread block (failover); several blocks name their own.
      if (sessions.length > 1) throw new UsageError(`${g.label('spread')} with a --spreadlogd-conf of ${sessions.length} Spread blocks: each block names its daemon (Port, Host); give -s only with one block`);
      sessions[0]!.daemons = daemons;
    }
    if (cli.length) {
      if (sessions.length > 1) throw new UsageError(`--write, --write-split or --write-vhost with a --spreadlogd-conf of ${sessions.length} Spread blocks: say it in the conf's blocks`);
      sessions[0]!.routes.push(...cli);
    }
  } else {
    if (!cli.length) throw new UsageError('nothing to write: give --write GROUP=FILE, --write-split GROUP=DIR, --write-vhost GROUP=DIR or --spreadlogd-conf FILE');
    sessions = [{ daemons: daemons.length ? daemons : [parseDaemonAddress(DEFAULT_DAEMON)], routes: cli }];
  }
  for (const s of sessions) {
    const total = new Set(s.routes.map((r) => r.group)).size;
    if (total > 1000) throw new UsageError(`${total} groups in one session: at most 1000`);
  }

  const sizeGiven = g.size('buffer-size');
  const bufferSize = sizeGiven ?? conf?.bufferSize ?? (conf ? SPREADLOGD_BUFFER_SIZE : MAX_MESSAGE_BODY_LEN);
  if (bufferSize < 1) throw new UsageError(`${g.label('buffer-size')}: must be at least 1 byte`);
  const name = g.str('name');
  if (name !== undefined) usage(t, () => validatePrivateName(name), g.label('name'));
  if (name !== undefined && sessions.length > 1) throw new UsageError(`${g.label('name')} with ${sessions.length} Spread blocks: each session needs its own private name; leave -n out`);
  const writer = usage(t, () => resolveWriterOptions({ maxOpenFiles: g.int('max-open-files', 'files') }));
  const connectTimeout = g.int('connect-timeout', 'milliseconds') ?? DEFAULT_CONNECT_TIMEOUT;
  if (connectTimeout < 1) throw new UsageError(`${g.label('connect-timeout')}: must be at least 1 millisecond`);
  const reportInterval = g.int('report-interval', 'milliseconds') ?? REPORT_INTERVAL;
  const failbackInterval = g.int('failback-interval', 'milliseconds') ?? DEFAULT_FAILBACK_INTERVAL;
  const liveness = g.int('liveness', 'milliseconds') ?? DEFAULT_LIVENESS_INTERVAL;
  return {
    sessions,
    bufferSize,
    utc: g.bool('utc'),
    gapNotice: g.bool('gap-notice'),
    dedup: g.bool('dedup'),
    lock: g.bool('lock'),
    maxOpenFiles: writer.maxOpenFiles,
    name,
    connectTimeout,
    reportInterval,
    failbackInterval,
    liveness,
    defaultDaemon: !conf && daemons.length === 0,
    metrics: g.has('metrics') ? usage(t, () => parseHostPort(g.str('metrics')!), g.label('metrics')) : undefined,
    user: parseUser(g),
  };
}

/** One stderr line per kind of bad input per interval, with the count since the last. */
class Throttle {
  private readonly last = new Map<string, { at: number; since: number }>();
  constructor(private readonly interval: number) {}

  report(key: string, line: () => string): void {
    const now = Date.now();
    const l = this.last.get(key);
    if (l && now - l.at < this.interval) {
      l.since++;
      return;
    }
    this.last.set(key, { at: now, since: 0 });
    const more = l?.since ? ` (and ${l.since} more since the last report)` : '';
    log(`${line()}${more}`);
  }
}

/**
 * Tests only: SPREAD_PIPE_TEST_CLOCK=<ISO time> starts this process's clock
 * there (it then runs at the real rate), to cross a day boundary in a test
 * without waiting for midnight. Not documented for users.
 */
function clockFromEnv(): () => number {
  const start = process.env.SPREAD_PIPE_TEST_CLOCK;
  if (!start) return Date.now;
  const t0 = Date.parse(start);
  if (Number.isNaN(t0)) throw new UsageError(`SPREAD_PIPE_TEST_CLOCK: not a time: ${JSON.stringify(start)}`);
  const real0 = Date.now();
  return () => t0 + (Date.now() - real0);
}

export async function run(args: string[]): Promise<number> {
  const cfg = await parseArgs(args);
  if (!cfg) return EXIT_OK;
  const clock = clockFromEnv();
  const throttle = new Throttle(cfg.reportInterval);
  const drops = { oversize: 0, 'no-first-word': 0 };

  const dedup = cfg.dedup ? new WriteDedup() : undefined;
  const writer = new LogWriter(
    (e: WriterEvent) => {
      if (e.type === 'error') log(`cannot write ${e.path}: ${e.message}${e.dropped ? ` (${e.dropped} message(s) lost since the last report, ${e.reason})` : ''}`);
      else if (e.type === 'reopen') log(`reopened log files (${e.files} were open)`);
      else if (e.type === 'pipe') describePipe(e.event);
    },
    cfg.maxOpenFiles,
    undefined,
    dedup,
    { locks: cfg.lock ? new FileLocks() : undefined, flushDelay: FLUSH_DELAY },
  );
  // Bound before joining (a port in use stops the start with one line, exit 1), and before --user drops root.
  const metrics = cfg.metrics && (await startMetrics(cfg.metrics));
  try {
    becomeUser(cfg.user);
  } catch (e) {
    await metrics?.close();
    throw e;
  }
  // Every path is tried and every journal read before joining: a typo stops the start with one line.
  const built = cfg.sessions.map((s) => {
    const routes = buildRoutes(s.routes, writer, {
      dedup,
      utc: cfg.utc,
      maxLength: cfg.bufferSize,
      onRecovery: (journal, undone, truncated) =>
        log(`${journal}: ${undone} write(s) found unfinished after a crash; their lines will be taken again${truncated.length ? ` (cut back: ${truncated.join(', ')})` : ''}`),
    });
    return { cfg: s, routes, byGroup: routesByGroup(routes) };
  });
  const allRoutes: Route[] = built.flatMap((b) => b.routes);

  const sessions = built.map((b) => {
    // Per message: plain loops over what was looked up once, nothing allocated.
    const byGroup = b.byGroup;
    const bufferSize = cfg.bufferSize;
    const onData = (f: Frame, now: number): void => {
      const data = f.data;
      if (data.length > bufferSize) {
        drops.oversize++;
        throttle.report('oversize', () => `dropped a message of ${f.data.length} bytes from ${f.sender} to ${f.groups.join(',')}: larger than the buffer (${cfg.bufferSize} bytes; --buffer-size or BufferSize)`);
        return;
      }
      const groups = f.groups;
      for (let i = 0; i < groups.length; i++) {
        const g = groups[i]!;
        const list = byGroup.get(g);
        if (!list || (i > 0 && groups.indexOf(g) < i)) continue;
        for (let k = 0; k < list.length; k++) {
          const r = list[k]!;
          const noWord = r.stats.noWord;
          r.handle(f.sender, f.messType, data, now);
          if (r.stats.noWord !== noWord) {
            drops['no-first-word'] += r.stats.noWord - noWord;
            throttle.report(`no-word ${r.spec.source}`, () => `${r.spec.source}: dropped a line without a space (no first word to name its file)`);
          }
        }
      }
    };
    const s = new WriteSession({
      daemons: b.cfg.daemons,
      groups: [...b.byGroup.keys()],
      name: cfg.name,
      connectTimeout: cfg.connectTimeout,
      reconnectDelay: exponentialBackoff(),
      failbackInterval: cfg.failbackInterval,
      livenessInterval: cfg.liveness,
      clock,
      onData,
    });
    s.on('event', (e: SessionEvent) => {
      switch (e.type) {
        case 'subscribed':
          log(`joined ${[...b.byGroup.keys()].join(',')} on ${e.daemon} as ${e.privateGroup}`);
          break;
        case 'lost':
          log(`lost the session with ${e.daemon}: ${e.reason}; joining again`);
          break;
        case 'failback':
          log(`${e.daemon} answers again: leaving ${e.from} to join there`);
          break;
        case 'connect-failed':
          throttle.report(`connect ${e.daemon}`, () => `cannot reach ${e.daemon}: ${e.reason}${e.retryIn === false ? '; giving up' : e.retryIn ? `; next try in ${e.retryIn} ms` : '; trying the next daemon'}${cfg.defaultDaemon ? ` (no -s was given: "${DEFAULT_DAEMON}" is the unix socket ${UNIX_SOCKET_DIR}/${DEFAULT_DAEMON} on this machine; for a daemon elsewhere give -s ${DEFAULT_DAEMON}@HOST)` : ''}`);
          break;
        case 'gap': {
          const line = gapRecord(e.from, e.to);
          log(`${line} (groups ${[...b.byGroup.keys()].join(',')}, now on ${e.daemon})`);
          if (cfg.gapNotice) {
            const buf = Buffer.from(`${line}\n`, 'latin1');
            for (const r of b.routes) r.notice(buf, clock());
          }
          break;
        }
      }
    });
    return s;
  });

  const routeCount = (k: 'filtered'): number => allRoutes.reduce((n, r) => n + r.stats[k], 0);
  const report = (detail: boolean): void => {
    const filteredTotal = routeCount('filtered');
    const w = writer.stats;
    const dropped = w.dropped + drops.oversize + drops['no-first-word'];
    const reasons = { ...writer.drops, ...drops };
    const lines = [...writer.fileStats().values()].reduce((n, f) => n + f.lines, 0);
    const received = sessions.reduce((n, s) => n + s.stats.messages, 0);
    const gaps = sessions.reduce((n, s) => n + s.stats.gaps, 0);
    log(
      `stats: received=${received} written=${w.messages} lines=${lines} bytes=${[...writer.fileStats().values()].reduce((n, f) => n + f.bytes, 0)} filtered=${filteredTotal} duplicates_dropped=${dedup?.duplicates ?? 0} dropped=${dropped} (${Object.entries(reasons)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}) gaps=${gaps} open_files=${writer.openFiles}`,
    );
    if (!detail) return;
    for (const s of sessions) log(`session ${s.label}: ${describeState(s)} sessions=${s.stats.sessions} gaps=${s.stats.gaps} failbacks=${s.stats.failbacks} hung=${s.stats.hung} not_subscribed_ms=${s.stats.gapMs}`);
    for (const [file, st] of writer.fileStats()) log(`file ${file} lines=${st.lines} bytes=${st.bytes}${st.lostBytes !== undefined ? ` lost_lines=${st.lostLines} lost_bytes=${st.lostBytes}` : ''}`);
  };

  const reopenNow = (): Array<[string, string | undefined]> => {
    const now = clock();
    const out: Array<[string, string | undefined]> = [];
    for (const r of allRoutes) {
      const f = r.fileAt(now);
      if (f) out.push(f);
    }
    return out;
  };
  if (metrics) {
    const r = metrics.registry;
    writerMetrics(r, writer);
    counter(r, 'write_received_total', 'Messages received from the Spread sessions.', () => sessions.reduce((n, x) => n + x.stats.messages, 0));
    counter(r, 'write_filtered_total', 'Messages no Match of their log took.', () => routeCount('filtered'));
    counter(r, 'write_duplicates_dropped_total', '--ack: repeats of a stream not written twice.', () => dedup?.duplicates ?? 0);
    counter(r, 'write_lost_total', 'Messages not written, by reason (pipe-died: lines a piped program had not read when it died).', () => Object.entries({ ...writer.drops, ...drops }).map(([reason, v]) => [{ reason }, v] as const), ['reason']);
    counter(r, 'write_gaps_total', 'Times a session was not subscribed (lines sent then are missing).', () => sessions.reduce((n, x) => n + x.stats.gaps, 0));
    counter(r, 'write_sessions_total', 'Spread sessions opened (joins after a reconnect or failover included).', () => sessions.reduce((n, x) => n + x.stats.sessions, 0));
    gauge(r, 'write_open_files', 'Log files open now.', () => writer.openFiles);
  }
  process.on('SIGHUP', () => writer.reopen(reopenNow()));
  process.on('SIGUSR1', () => report(true));

  let gaveUp = 0;
  const stopped = new Promise<number>((resolve) => {
    const stop = (sig: string): void => {
      log(`${sig}: flushing and exiting`);
      resolve(EXIT_OK);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    for (const s of sessions) {
      s.once('gave-up', () => {
        if (++gaveUp === sessions.length) resolve(EXIT_FAILURE);
      });
    }
  });
  for (const s of sessions) void s.start();
  const code = await stopped;
  // Leave first so that nothing arrives after the last flush.
  await Promise.all(sessions.map((s) => s.close()));
  await writer.close();
  dedup?.close();
  await metrics?.close();
  report(false);
  return code;
}

function describeState(s: WriteSession): string {
  const st = s.state;
  switch (st.kind) {
    case 'subscribed':
      return `subscribed on ${st.daemon.label} since ${new Date(st.since).toISOString()}`;
    case 'joining':
      return `joining on ${st.daemon.label}`;
    case 'connecting':
      return `connecting to ${st.daemon.label}`;
    case 'waiting':
      return `waiting until ${new Date(st.until).toISOString()} (${st.cause})`;
    default:
      return st.kind;
  }
}

function describePipe(e: PipeEvent): void {
  switch (e.type) {
    case 'start':
      if (e.restarts) log(`started |${e.command} again (pid ${e.pid}, restart ${e.restarts})`);
      return;
    case 'exit':
      log(`|${e.command} exited (${e.signal ?? `status ${e.code}`}); starting it again`);
      return;
    case 'lost':
      log(`|${e.command} died with ${e.bytes} bytes (${e.lines} lines) it had not read: lost (pipe-died)`);
      return;
    case 'error':
      log(`|${e.command}: ${e.message}`);
  }
}

