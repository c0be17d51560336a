/**
 * `spread-pipe --daemon`: the built-in Spread daemon and its log writer.
 */
import { DEFAULT_REPORT_INTERVAL, EPILOGUE, EXIT_OK, MODES, PROGRAM, UsageError, log } from './common.js';
import { type Given, type OptTable, parseCommandLine, usage } from './args.js';
import { DaemonReport } from './daemon-report.js';
import { type HostPort, parseHostPort } from '../metrics.js';
import { daemonMetrics, startMetrics } from './metrics.js';
import { type ResolvedDaemonOptions, SpreadDaemon, DEFAULT_MAX_PENDING, DEFAULT_MAX_PENDING_PER_ADDRESS, DEFAULT_SESSION_BUFFER, resolveDaemonOptions } from '../spread/daemon.js';
import { DEFAULT_SPREAD_PORT, UNIX_SOCKET_DIR } from '../spread/constants.js';
import { parseListenAddress, validateGroupName } from '../spread/address.js';
import { parseCidr } from '../cidr.js';
import { DEFAULT_MAX_OPEN_FILES, LogWriter, resolveWriterOptions } from '../writer.js';
import { WriteDedup } from '../write-dedup.js';
import { FileLocks } from '../write/file-lock.js';
import type { RouteSpec } from '../write/routes.js';
import { buildRoutes, routesByGroup } from '../write/targets.js';
import { type TargetUser, USER_OPTIONS, becomeUser, parseUser } from './user.js';
import { TLS_DAEMON_OPTIONS, daemonTls } from './tls-args.js';

export const DAEMON_OPTIONS = {
  listen: { alias: 'l', type: 'string', repeat: true, field: 'listen', describe: `TCP [HOST:]PORT, TLS tls://[HOST:]PORT (with --tls-cert/--tls-key) or unix /path; default TCP ${DEFAULT_SPREAD_PORT} on all interfaces and ${UNIX_SOCKET_DIR}/${DEFAULT_SPREAD_PORT}` },
  unix: { type: 'boolean', default: true, describe: `also listen on ${UNIX_SOCKET_DIR}/PORT for each plain (not tls://) TCP port, as Spread does (--no-unix: do not)` },
  name: { alias: 'n', type: 'string', field: 'name', describe: "daemon name in private groups (#user#NAME) [default: this machine's short host name]" },
  allow: { type: 'string', repeat: true, field: 'allow', describe: 'CIDR allowed to connect over TCP; default everyone' },
  'session-buffer': { type: 'string', default: DEFAULT_SESSION_BUFFER, field: 'sessionBuffer', describe: 'bytes queued toward one slow client before it is cut off (e.g. 64M)' },
  'max-pending-per-address': {
    type: 'string',
    default: DEFAULT_MAX_PENDING_PER_ADDRESS,
    field: 'maxPendingPerAddress',
    describe: 'TCP connections from one address not yet past the Spread handshake; more are closed unread (counted)',
  },
  'max-pending': { type: 'string', default: DEFAULT_MAX_PENDING, field: 'maxPending', describe: 'TCP connections from all addresses not yet past the Spread handshake; more are closed unread (counted)' },
  write: { alias: 'w', type: 'string', repeat: true, describe: 'GROUP=FILE: append every message to GROUP to FILE' },
  dedup: { type: 'boolean', default: true, describe: 'drop lines a --ack publisher sent twice; state in FILE.seen / DIR/.seen (--no-dedup: write all)' },
  'write-split': { type: 'string', repeat: true, describe: 'GROUP=DIR: one file per host tag (first word) in DIR' },
  'report-interval': {
    type: 'string',
    default: DEFAULT_REPORT_INTERVAL,
    describe: 'ms per report of refused connections, dropped sessions and connects beyond the first lines (one line per kind)',
  },
  'max-open-files': { type: 'string', default: DEFAULT_MAX_OPEN_FILES, field: 'maxOpenFiles', describe: 'files --write-split keeps open at once; the least recently used is closed' },
  metrics: { type: 'string', describe: 'serve the counters in Prometheus text format at http://[HOST:]PORT/metrics (HOST defaults to 127.0.0.1)' },
  ...USER_OPTIONS,
  ...TLS_DAEMON_OPTIONS,
} as const satisfies OptTable;

export interface DaemonConfig {
  daemon: ResolvedDaemonOptions;
  /** Also serve each TCP port on /tmp/PORT. */
  unix: boolean;
  writes: Array<[string, string]>;
  splits: Array<[string, string]>;
  dedup: boolean;
  maxOpenFiles: number;
  reportInterval: number;
  /** --metrics: where /metrics listens. */
  metrics: HostPort | undefined;
  /** --user: who to become once every listener is bound (the --write files are then opened as that user). */
  user: TargetUser | undefined;
}

function parseAssignment(g: Given, opt: 'write' | 'write-split', text: string): [string, string] {
  const i = text.indexOf('=');
  if (i <= 0 || i === text.length - 1) throw new UsageError(`${g.label(opt)}: expected GROUP=${opt === 'write' ? 'FILE' : 'DIR'}, got ${JSON.stringify(text)}`);
  return [usage(g.table, () => validateGroupName(text.slice(0, i)), g.label(opt)), text.slice(i + 1)];
}

/** Parse and check the daemon's command line; undefined after --help. */
export async function parseArgs(argv: string[]): Promise<DaemonConfig | undefined> {
  const t = DAEMON_OPTIONS;
  const g = await parseCommandLine(argv, t, {
    scriptName: `${PROGRAM} --daemon`,
    usage: `$0 [options]\n\nRun a minimal Spread daemon (client protocol of Spread 3.x/4.x/5.x), optionally writing groups to files.\n${MODES}`,
    examples: [
      ['$0', `listen on ${DEFAULT_SPREAD_PORT} (all interfaces) and ${UNIX_SOCKET_DIR}/${DEFAULT_SPREAD_PORT}`],
      ['$0 --listen 127.0.0.1:4803 --write-split jigdo=/var/log/jigdo', 'write one file per web server'],
    ],
    epilogue: `Signals: SIGHUP reopens log files (logrotate) and re-reads the TLS files, SIGUSR1 prints sessions, groups and counters, SIGTERM flushes and exits.\n${EPILOGUE}`,
  });
  if (!g) return undefined;
  const listenArgs = g.list('listen');
  // The unix socket /tmp/PORT comes from --unix (below), for each TCP port.
  const listen = listenArgs.length ? listenArgs.map((l) => usage(t, () => parseListenAddress(l), g.label('listen'))) : [{ port: DEFAULT_SPREAD_PORT }];
  const allow = g.list('allow').map((c) => usage(t, () => parseCidr(c), g.label('allow')));
  const maxTlsHandshakes = g.int('max-tls-handshakes', 'handshakes');
  if (maxTlsHandshakes === 0) throw new UsageError(`${g.label('max-tls-handshakes')}: must be at least 1 handshake, got 0`);
  const tlsListen = listen.some((l) => 'port' in l && l.tls);
  const tls = daemonTls(g);
  if (tlsListen && !tls) throw new UsageError(`${g.label('listen')}: a tls:// address needs --tls-cert and --tls-key`);
  if (tls && !tlsListen) throw new UsageError(`${g.label(g.has('tls-cert') ? 'tls-cert' : 'tls-client-ca')}: no --listen tls://HOST:PORT, so it would be ignored`);
  const daemon = usage(t, () =>
    resolveDaemonOptions({
      name: g.str('name'),
      listen,
      allow,
      sessionBuffer: g.size('session-buffer'),
      maxPendingPerAddress: g.int('max-pending-per-address', 'connections'),
      maxPending: g.int('max-pending', 'connections'),
      tls,
      maxTlsHandshakes,
    }),
  );
  const writes = g.list('write').map((w) => parseAssignment(g, 'write', w));
  const splits = g.list('write-split').map((w) => parseAssignment(g, 'write-split', w));
  const writer = usage(t, () => resolveWriterOptions({ maxOpenFiles: g.int('max-open-files', 'files') }));
  const reportInterval = g.int('report-interval', 'milliseconds') ?? DEFAULT_REPORT_INTERVAL;
  if (reportInterval < 1) throw new UsageError(`${g.label('report-interval')}: must be at least 1 millisecond, got 0`);
  const metrics = g.has('metrics') ? usage(t, () => parseHostPort(g.str('metrics')!), g.label('metrics')) : undefined;
  return { daemon, unix: g.bool('unix'), writes, splits, dedup: g.bool('dedup'), maxOpenFiles: writer.maxOpenFiles, reportInterval, metrics, user: parseUser(g) };
}

export async function run(args: string[]): Promise<number> {
  const cfg = await parseArgs(args);
  if (!cfg) return EXIT_OK;
  const { writes, splits, reportInterval } = cfg;
  const maxFiles = cfg.maxOpenFiles;

  const dedup = cfg.dedup ? new WriteDedup() : undefined;
  const writer = new LogWriter(
    (e) => {
      if (e.type === 'error') log(`cannot write ${e.path}: ${e.message}${e.dropped ? ` (${e.dropped} message(s) lost since the last report)` : ''}`);
      else if (e.type === 'reopen') log(`reopened log files (${e.files} were open)`);
    },
    maxFiles,
    undefined,
    dedup,
    { locks: new FileLocks() },
  );
  // The same routes as `spread-pipe write`: paths tried and journals read before listening,
  // so a typo, a permission or a broken journal stops the start with one line.
  const specs: RouteSpec[] = [
    ...writes.map(([group, file]): RouteSpec => ({ group, kind: 'file', target: file, matches: [], source: `--write ${group}=${file}` })),
    ...splits.map(([group, dir]): RouteSpec => ({ group, kind: 'split', target: dir, matches: [], source: `--write-split ${group}=${dir}` })),
  ];
  const build = (): ReturnType<typeof buildRoutes> =>
    buildRoutes(specs, writer, {
      dedup,
      onRecovery: (journal, undone, truncated) =>
        log(`${journal}: ${undone} write(s) found unfinished after a crash; their lines will be taken again${truncated.length ? ` (cut back: ${truncated.join(', ')})` : ''}`),
    });
  // With --user the files are opened after the drop, as that user: a file it cannot write stops the start, not the first logrotate.
  let routes = cfg.user ? undefined : build();

  const metrics = cfg.metrics && (await startMetrics(cfg.metrics));
  const daemon = await SpreadDaemon.start(cfg.daemon).catch(async (e: unknown) => {
    await metrics?.close();
    throw e;
  });
  if (metrics) daemonMetrics(metrics.registry, daemon, writes.length + splits.length > 0 ? writer : undefined, dedup);
  try {
    // Real Spread also serves its port on /tmp/PORT, so `-s PORT` works locally; port 0 is known now.
    // Not for a TLS port: its unix socket would be plaintext under the same number.
    const tlsPorts = new Set(daemon.tlsAddresses.map((a) => a.port));
    if (cfg.unix) for (const port of new Set(daemon.tcp.map((a) => a.port).filter((p) => !tlsPorts.has(p)))) await daemon.listenOn({ path: `${UNIX_SOCKET_DIR}/${port}` });
  } catch (e) {
    await daemon.close();
    throw e;
  }
  if (cfg.user) {
    try {
      becomeUser(cfg.user, daemon.unixPaths.map((path) => ({ path })));
      routes = build();
    } catch (e) {
      await daemon.close();
      await metrics?.close();
      throw e;
    }
  }
  const events = new DaemonReport(log, reportInterval);
  daemon.on('event', (e) => events.event(e));
  for (const a of daemon.tcp) log(`listening on ${daemon.tlsAddresses.includes(a) ? 'tls://' : ''}${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`);
  for (const p of daemon.unixPaths) log(`listening on ${p}`);
  log(`daemon "${daemon.daemonName}" ready`);

  for (const [group, list] of routesByGroup(routes!)) {
    daemon.tap(group, (f) => {
      const now = Date.now();
      for (const r of list) r.handle(f.sender, f.messType, f.data, now);
    });
  }
  // The writer writes before any output of the turn leaves: a --ack publisher's copy then means "written".
  daemon.onFlushTaps(() => writer.flush());

  process.on('SIGHUP', () => {
    writer.reopen();
    // Renewed certificates without a restart; a bad file keeps the old ones (one line says why).
    daemon.reloadTls();
  });
  const report = (detail: boolean): void => {
    const s = daemon.getStats();
    log(`stats: sessions=${s.sessions} groups=${s.groups.length} messages_in=${s.messagesIn} deliveries=${s.deliveries} bytes_in=${s.bytesIn} rejected=${s.rejected} pending_refused_per_address=${s.pendingRefusedPerAddress} pending_refused_total=${s.pendingRefusedTotal} protocol_errors=${s.protocolErrors} forged_tags=${s.forgedTags} slow_killed=${s.slowKilled} written=${writer.stats.messages} write_errors=${writer.stats.errors} write_dropped=${writer.stats.dropped} duplicates_dropped=${dedup?.duplicates ?? 0}`);
    if (!detail) return;
    for (const x of daemon.sessionList()) log(`session ${x.name} ${x.remote} groups=${x.groups.join(',') || '-'} queued=${x.queued} in=${x.in} out=${x.out}`);
    for (const [g, n] of s.groups) log(`group ${g} members=${n}`);
  };
  process.on('SIGUSR1', () => report(true));
  await new Promise<void>((resolve) => {
    const stop = (sig: string): void => {
      log(`${sig}: flushing and exiting`);
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  // Stop reading first so that nothing arrives after the last flush.
  await daemon.close();
  await writer.close();
  dedup?.close();
  events.flush();
  await metrics?.close();
  report(false);
  return EXIT_OK;
}
