/**
 * `spread-pipe top`: the farm's access logs, live. Joins groups (or reads
 * stdin with --stdin), parses every line, and shows rates per web server and
 * vhost, status codes, top lists and distinct clients: full-screen on a
 * terminal, one JSON object per interval otherwise (or with --json), and as a
 * web page with --http.
 */
import { EPILOGUE, EXIT_FAILURE, EXIT_OK, MODES, PROGRAM, UsageError, log } from './common.js';
import { type OptTable, parseCommandLine, usage } from './args.js';
import { TLS_CLIENT_OPTIONS, TLS_DAEMON_FORM, clientTls } from './tls-args.js';
import { SpreadClient, DEFAULT_CONNECT_TIMEOUT } from '../spread/client.js';
import { type DaemonAddress, parseDaemonAddress, validateGroupName, validatePrivateName } from '../spread/address.js';
import { DEFAULT_SPREAD_PORT, UNIX_SOCKET_DIR } from '../spread/constants.js';
import { errorMessage } from '../errors.js';
import { DuplicateFilter } from '../dedup.js';
import { exponentialBackoff } from '../backoff.js';
import { type HostPort, parseHostPort } from '../metrics.js';
import { choiceOption, intOption } from '../options.js';
import { Aggregator, DEFAULT_TOP, DEFAULT_TOP_CAPACITY, type Snapshot } from '../top/aggregate.js';
import { DEFAULT_LOG_FORMAT, LOG_FORMATS, type LogFormat } from '../top/parse.js';
import { DEFAULT_DISTINCT_CAP } from '../top/sketch.js';
import { TopHttp } from '../top/http.js';
import { type TargetUser, USER_OPTIONS, becomeUser, parseUser } from './user.js';
import { topRegistry } from '../top/metrics.js';
import { TerminalView } from '../top/tty.js';

/** @default 1000 ms */
export const DEFAULT_INTERVAL = 1000;
/** Shortest refresh: below it the view costs more than the counting. @default 100 */
export const MIN_INTERVAL = 100;
/**
 * Bytes of the session's one reused read buffer (SpreadClientOptions.readBuffer):
 * no allocation per read. Safe because every message is counted before the
 * dataSink call handing it over returns; what is kept (keys, host tags) is copied. @default 256 KiB
 */
export const READ_BUFFER = 256 * 1024;
/** The daemon when no -s is given, as for tail. */
export const DEFAULT_DAEMON = String(DEFAULT_SPREAD_PORT);

export const TOP_OPTIONS = {
  group: { alias: 'g', type: 'string', repeat: true, describe: 'group to join' },
  spread: { alias: 's', type: 'string', repeat: true, describe: `daemon: PORT (the unix socket ${UNIX_SOCKET_DIR}/PORT), PORT@HOST, HOST:PORT or ${TLS_DAEMON_FORM}; repeat for failover [default: ${DEFAULT_DAEMON}]` },
  name: { alias: 'n', type: 'string', describe: 'private name, 1-10 characters [default: derived from the pid]' },
  'connect-timeout': { type: 'string', default: DEFAULT_CONNECT_TIMEOUT, field: 'connectTimeout', describe: 'milliseconds to connect and handshake' },
  'log-format': { type: 'string', default: DEFAULT_LOG_FORMAT, field: 'format', describe: `${LOG_FORMATS.join(', ')} (vcombined: "%v:%p " first)` },
  tag: { type: 'boolean', default: true, describe: 'lines start with a host tag (--no-tag: the sender names the web server)' },
  interval: { type: 'string', default: DEFAULT_INTERVAL, field: 'intervalMs', describe: 'milliseconds between refreshes' },
  top: { type: 'string', default: DEFAULT_TOP, field: 'top', describe: 'entries per top list' },
  'top-capacity': { type: 'string', default: DEFAULT_TOP_CAPACITY, field: 'topCapacity', describe: 'counters kept per top list (space-saving; counts are exact below it)' },
  'distinct-cap': { type: 'string', default: DEFAULT_DISTINCT_CAP, field: 'distinctCap', describe: 'distinct clients counted exactly before a HyperLogLog estimate' },
  json: { type: 'boolean', default: false, describe: 'one JSON object per interval on stdout (the default when stdout is not a terminal)' },
  'exit-after': { type: 'string', field: 'exitAfter', describe: 'exit after this many lines, printing a final JSON object' },
  http: { type: 'string', describe: 'serve the live page, /events and /metrics on [HOST:]PORT (HOST defaults to 127.0.0.1)' },
  stdin: { type: 'boolean', default: false, describe: 'read log lines from stdin instead of Spread (e.g. a log file)' },
  dedup: { type: 'boolean', default: true, describe: 'drop lines a --ack publisher sent twice' },
  ...USER_OPTIONS,
  ...TLS_CLIENT_OPTIONS,
} as const satisfies OptTable;

export interface TopConfig {
  groups: string[];
  daemons: DaemonAddress[];
  name: string | undefined;
  connectTimeout: number;
  format: LogFormat;
  tagged: boolean;
  intervalMs: number;
  top: number;
  topCapacity: number;
  distinctCap: number;
  /** One JSON object per interval on stdout (forced when stdout is not a terminal). */
  json: boolean;
  exitAfter: number | undefined;
  http: HostPort | undefined;
  /** Read lines from stdin instead of Spread. */
  stdin: boolean;
  dedup: boolean;
  /** --user: who to become once --http is bound. */
  user?: TargetUser;
}

/** Fill and check top's options (the library-side resolver: OptionErrors name the field). */
export function resolveTopOptions(o: Partial<TopConfig> & Pick<TopConfig, 'groups' | 'daemons'>): TopConfig {
  return {
    groups: o.groups,
    daemons: o.daemons,
    name: o.name,
    connectTimeout: intOption('connectTimeout', o.connectTimeout, DEFAULT_CONNECT_TIMEOUT, { min: 1, unit: 'milliseconds' }),
    format: choiceOption('format', o.format, DEFAULT_LOG_FORMAT, LOG_FORMATS),
    tagged: o.tagged ?? true,
    intervalMs: intOption('intervalMs', o.intervalMs, DEFAULT_INTERVAL, { min: MIN_INTERVAL, unit: 'milliseconds' }),
    top: intOption('top', o.top, DEFAULT_TOP, { min: 1, max: 1000, unit: 'entries' }),
    topCapacity: intOption('topCapacity', o.topCapacity, DEFAULT_TOP_CAPACITY, { min: 1, max: 10_000_000, unit: 'counters' }),
    distinctCap: intOption('distinctCap', o.distinctCap, DEFAULT_DISTINCT_CAP, { min: 1, max: 100_000_000, unit: 'addresses' }),
    json: o.json ?? false,
    exitAfter: o.exitAfter === undefined ? undefined : intOption('exitAfter', o.exitAfter, 1, { min: 1, unit: 'lines' }),
    http: o.http,
    stdin: o.stdin ?? false,
    dedup: o.dedup ?? true,
  };
}

export const TOP_HELP = {
  scriptName: `${PROGRAM} top`,
  usage: `$0 -g GROUP [-g GROUP ...] [-s DAEMON ...] [options]\n\nLive view of the access logs a farm multicasts: rates per web server, status codes, top URLs, clients.\n${MODES}`,
  examples: [
    ['$0 -g jigdo -s 4803@loghost', 'watch the jigdo farm in the terminal'],
    ['$0 -g jigdo -s 4803@loghost --http 127.0.0.1:8080', '... and on a web page'],
    ['$0 --stdin --no-tag --json --exit-after 100000 < access.log', 'summarise a log file as JSON'],
  ] as Array<[string, string]>,
  epilogue: `Keys: 1-6 or tab pick the panel, q quits.\n${EPILOGUE}`,
};

/** Parse and check top's command line; undefined after --help. */
export async function parseArgs(argv: string[]): Promise<TopConfig | undefined> {
  const t = TOP_OPTIONS;
  const g = await parseCommandLine(argv, t, TOP_HELP);
  if (!g) return undefined;
  const stdin = g.bool('stdin');
  const groups = g.list('group').map((x) => usage(t, () => validateGroupName(x), g.label('group')));
  if (!stdin && groups.length === 0) throw new UsageError(`${g.label('group')} is needed (or --stdin to read lines from stdin)`);
  if (stdin && (groups.length > 0 || g.has('spread'))) throw new UsageError('--stdin reads lines from stdin: no -g or -s with it');
  const spreads = g.list('spread');
  const daemons = clientTls(
    g,
    (spreads.length ? spreads : [DEFAULT_DAEMON]).map((s) => usage(t, () => parseDaemonAddress(s), g.label('spread'))),
  );
  const name = g.str('name');
  if (name !== undefined) usage(t, () => validatePrivateName(name), g.label('name'));
  const user = parseUser(g);
  const resolved = usage(t, () =>
    resolveTopOptions({
      groups,
      daemons,
      name,
      connectTimeout: g.int('connect-timeout', 'milliseconds'),
      format: g.str('log-format') as LogFormat | undefined,
      tagged: g.bool('tag'),
      intervalMs: g.int('interval', 'milliseconds'),
      top: g.int('top', 'entries'),
      topCapacity: g.int('top-capacity', 'counters'),
      distinctCap: g.int('distinct-cap', 'addresses'),
      json: g.bool('json'),
      exitAfter: g.int('exit-after', 'lines'),
      http: g.has('http') ? usage(t, () => parseHostPort(g.str('http')!), g.label('http')) : undefined,
      stdin,
      dedup: g.bool('dedup'),
    }),
  );
  return { ...resolved, user };
}

export async function run(args: string[]): Promise<number> {
  const cfg = await parseArgs(args);
  if (!cfg) return EXIT_OK;
  const agg = new Aggregator({ format: cfg.format, tagged: cfg.tagged, top: cfg.top, topCapacity: cfg.topCapacity, distinctCap: cfg.distinctCap });
  let duplicates = 0;
  const registry = topRegistry(agg, { duplicates: () => duplicates });
  const json = cfg.json || !process.stdout.isTTY;
  const view = json ? undefined : new TerminalView(process.stdout);
  /** In the full-screen view stderr would tear the screen: lines wait until it is gone. */
  const held: string[] = [];
  const say = (line: string): void => {
    if (view) held.push(line);
    else log(line);
  };

  let web: TopHttp | undefined;
  if (cfg.http) {
    try {
      web = await TopHttp.start(cfg.http, () => agg.history(), registry);
    } catch (e) {
      log(errorMessage(e));
      return EXIT_FAILURE;
    }
    const a = web.address;
    log(`top: page at http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}/ (metrics at /metrics)`);
  }
  try {
    becomeUser(cfg.user);
  } catch (e) {
    await web?.close();
    throw e;
  }

  let remaining = cfg.exitAfter ?? Infinity;
  const emit = (s: Snapshot): void => {
    if (json) process.stdout.write(`${JSON.stringify(s)}\n`);
    else view!.update(s, agg.history());
    web?.publish(s);
  };

  return new Promise<number>((resolve) => {
    let finished = false;
    let client: SpreadClient | undefined;
    let stdinListener: ((c: Buffer) => void) | undefined;
    const timer = setInterval(() => {
      agg.tick();
      emit(agg.snapshot());
    }, cfg.intervalMs);

    const quit = new AbortController();
    const finish = (code: number, final: boolean): void => {
      if (finished) return;
      finished = true;
      // A connect still in progress must not attach after the end.
      quit.abort();
      clearInterval(timer);
      agg.tick();
      const s = agg.snapshot();
      view?.stop();
      if (process.stdin.isTTY && view) process.stdin.setRawMode(false);
      process.stdin.pause();
      if (stdinListener) process.stdin.off('data', stdinListener);
      for (const l of held) log(l);
      if (final || (json && code === EXIT_OK)) process.stdout.write(`${JSON.stringify(s)}\n`);
      web?.publish(s);
      const done = async (): Promise<void> => {
        client?.removeAllListeners('close');
        await client?.disconnect().catch(() => undefined);
        await web?.close();
        if (process.stdout.writableLength === 0) resolve(code);
        else process.stdout.once('drain', () => resolve(code));
      };
      void done();
    };

    const take = (data: Buffer, sender: string, start = 0, end = data.length): void => {
      if (finished) return;
      remaining -= agg.addRange(data, start, end, sender, remaining);
      if (remaining <= 0) finish(EXIT_OK, true);
    };

    process.once('SIGINT', () => finish(EXIT_OK, false));
    process.once('SIGTERM', () => finish(EXIT_OK, false));

    if (view) {
      view.start();
      // Restore the terminal whatever way the process ends.
      process.once('exit', () => view.stop());
      process.stdout.on('resize', () => view.redraw());
      if (process.stdin.isTTY && !cfg.stdin) {
        process.stdin.setRawMode(true);
        process.stdin.setEncoding('latin1');
        process.stdin.on('data', (k: string | Buffer) => {
          if (view.key(String(k)) === 'quit') finish(EXIT_OK, false);
        });
        process.stdin.resume();
      }
      agg.tick();
      view.update(agg.snapshot(), agg.history());
    }

    if (cfg.stdin) {
      let rest: Buffer | undefined;
      stdinListener = (chunk: Buffer): void => {
        const buf = rest ? Buffer.concat([rest, chunk]) : chunk;
        const lf = buf.lastIndexOf(0x0a);
        if (lf < 0) {
          rest = buf;
          return;
        }
        rest = lf + 1 < buf.length ? buf.subarray(lf + 1) : undefined;
        take(buf.subarray(0, lf + 1), 'stdin');
      };
      process.stdin.on('data', stdinListener);
      process.stdin.once('end', () => {
        if (rest && !finished) take(rest, 'stdin');
        finish(EXIT_OK, true);
      });
      return;
    }

    const dedup = cfg.dedup ? new DuplicateFilter() : undefined;
    // Data messages come here as byte ranges of the read buffer (no event, Frame or view per message).
    const onData = (b: Buffer, start: number, end: number, sender: string, messType: number): void => {
      if (dedup === undefined || !dedup.sequenced(sender)) {
        take(b, sender, start, end);
        return;
      }
      const data = dedup.filter(sender, messType, b.subarray(start, end));
      if (data) take(data, sender);
      else duplicates++;
    };
    const backoff = exponentialBackoff();
    let next = 0;
    const connectAny = async (): Promise<SpreadClient> => {
      let last: unknown;
      for (let k = 0; k < cfg.daemons.length; k++) {
        const d = cfg.daemons[(next + k) % cfg.daemons.length]!;
        try {
          const c = await SpreadClient.connect({ daemon: d, name: cfg.name, membership: true, connectTimeout: cfg.connectTimeout, signal: quit.signal, readBuffer: READ_BUFFER, dataSink: onData });
          next = (next + k) % cfg.daemons.length;
          return c;
        } catch (e) {
          last = e;
          if (finished) throw e;
          say(`cannot reach ${d.label}: ${errorMessage(e)}`);
        }
      }
      throw last;
    };
    const attach = (c: SpreadClient): void => {
      client = c;
      for (const g of cfg.groups) c.join(g);
      const waiting = new Set(cfg.groups);
      c.on('message', (ev) => {
        if (ev.kind === 'membership' && waiting.delete(ev.info.group)) {
          // Tests and scripts wait for this before they publish.
          if (waiting.size === 0) say(`top: joined ${cfg.groups.join(', ')} at ${cfg.daemons[next]!.label}`);
          return;
        }
      });
      c.on('close', (err?: Error) => {
        if (finished) return;
        say(`lost the session with ${cfg.daemons[next]!.label}: ${err ? errorMessage(err) : 'closed'}; reconnecting`);
        client = undefined;
        next = (next + 1) % cfg.daemons.length;
        void redial(1);
      });
    };
    const redial = async (attempt: number): Promise<void> => {
      const ms = backoff(attempt, undefined);
      await new Promise((r) => setTimeout(r, ms === false ? 1000 : ms));
      if (finished) return;
      try {
        attach(await connectAny());
        say(`connected to ${cfg.daemons[next]!.label} again`);
      } catch {
        if (!finished) void redial(attempt + 1);
      }
    };
    connectAny().then(attach, () => {
      // Like `tail`: nothing to show if no daemon answers at start.
      if (!finished) finish(EXIT_FAILURE, false);
    });
  });
}
