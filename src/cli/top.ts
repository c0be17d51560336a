/**
 * `spread-pipe top`: the farm's access logs, live. Joins groups (or reads
 * stdin with --stdin), parses every line, and shows rates per web server and
 * vhost, status codes, top lists and distinct clients: full-screen on a
 * terminal, one JSON object per interval otherwise (or with --json), and as a
 * web page with --http.
 */
import yargs from 'yargs';
import { EPILOGUE, EXIT_FAILURE, EXIT_OK, PROGRAM, UsageError, failUsage, log, usage } from './common.js';
import { SpreadClient, DEFAULT_CONNECT_TIMEOUT } from '../spread/client.js';
import { type DaemonAddress, parseDaemonAddress, validateGroupName, validatePrivateName } from '../spread/address.js';
import { DEFAULT_SPREAD_PORT } from '../spread/constants.js';
import { errorMessage } from '../errors.js';
import { DuplicateFilter } from '../dedup.js';
import { exponentialBackoff } from '../backoff.js';
import { type HostPort, parseHostPort } from '../metrics.js';
import { Aggregator, DEFAULT_TOP, DEFAULT_TOP_CAPACITY, type Snapshot } from '../top/aggregate.js';
import { DEFAULT_LOG_FORMAT, LOG_FORMATS, type LogFormat } from '../top/parse.js';
import { DEFAULT_DISTINCT_CAP } from '../top/sketch.js';
import { TopHttp } from '../top/http.js';
import { topRegistry } from '../top/metrics.js';
import { TerminalView } from '../top/tty.js';

/** @default 1000 ms */
export const DEFAULT_INTERVAL = 1000;
/** Shortest refresh: below it the view costs more than the counting. @default 100 */
export const MIN_INTERVAL = 100;
/** The smallest exact-distinct cap accepted on the command line (issue #14: at least a million by default). */
export const MIN_DISTINCT_CAP = 1;

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
}

function single<T>(v: T | T[] | undefined, opt: string): T | undefined {
  if (Array.isArray(v)) throw new UsageError(`${opt} was given ${v.length} times; it takes one value`);
  return v;
}

function integer(v: unknown, opt: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = typeof v === 'number' ? v : /^\d+$/.test(String(v).trim()) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`bad ${opt} "${String(v)}": expected an integer ${min}..${max}`);
  return n;
}

export async function parseArgs(args: string[]): Promise<TopConfig> {
  const argv = await yargs(args)
    .scriptName(`${PROGRAM} top`)
    .usage('$0 -g GROUP [-g GROUP ...] [-s DAEMON ...] [options]\n\nLive view of the access logs a farm multicasts: rates per web server, status codes, top URLs, clients.')
    .option('group', { alias: 'g', type: 'string', describe: 'group to join (repeatable)' })
    .option('spread', { alias: 's', type: 'string', describe: `daemon: PORT (unix socket /tmp/PORT), PORT@HOST or HOST:PORT; repeat for failover [default: ${DEFAULT_SPREAD_PORT}]` })
    .option('name', { alias: 'n', type: 'string', describe: 'private name, 1-10 characters (default derived from the pid)' })
    .option('connect-timeout', { type: 'string', describe: `milliseconds to connect and handshake [default: ${DEFAULT_CONNECT_TIMEOUT}]` })
    .option('log-format', { type: 'string', describe: `${LOG_FORMATS.join(', ')} (vcombined: "%v:%p " first) [default: ${DEFAULT_LOG_FORMAT}]` })
    .option('tag', { type: 'boolean', default: true, describe: 'lines start with a host tag (--no-tag: the sender names the web server)' })
    .option('interval', { type: 'string', describe: `milliseconds between refreshes [default: ${DEFAULT_INTERVAL}]` })
    .option('top', { type: 'string', describe: `entries per top list [default: ${DEFAULT_TOP}]` })
    .option('top-capacity', { type: 'string', describe: `counters kept per top list (space-saving; counts are exact below it) [default: ${DEFAULT_TOP_CAPACITY}]` })
    .option('distinct-cap', { type: 'string', describe: `distinct clients counted exactly before a HyperLogLog estimate [default: ${DEFAULT_DISTINCT_CAP}]` })
    .option('json', { type: 'boolean', default: false, describe: 'one JSON object per interval on stdout (the default when stdout is not a terminal)' })
    .option('exit-after', { type: 'string', describe: 'exit after this many lines, printing a final JSON object' })
    .option('http', { type: 'string', describe: 'serve the live page, /events and /metrics on [HOST:]PORT (HOST defaults to 127.0.0.1)' })
    .option('stdin', { type: 'boolean', default: false, describe: 'read log lines from stdin instead of Spread (e.g. a log file)' })
    .option('dedup', { type: 'boolean', default: true, describe: 'drop lines a --ack publisher sent twice' })
    .example('$0 -g jigdo -s 4803@loghost', 'watch the jigdo farm in the terminal')
    .example('$0 -g jigdo -s 4803@loghost --http 127.0.0.1:8080', '... and on a web page')
    .example('$0 --stdin --no-tag --json --exit-after 100000 < access.log', 'summarise a log file as JSON')
    .epilogue(`Keys: 1-6 or tab pick the panel, q quits.\n${EPILOGUE}`)
    .help('help')
    .version(false)
    .strict()
    .fail(failUsage)
    .parseAsync();

  for (const o of ['name', 'connect-timeout', 'log-format', 'interval', 'top', 'top-capacity', 'distinct-cap', 'exit-after', 'http', 'json', 'stdin', 'tag', 'dedup']) {
    single((argv as Record<string, unknown>)[o], `--${o}`);
  }
  const list = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]).map(String);
  const stdin = argv.stdin;
  const groups = list(argv.group).map((g) => usage(() => validateGroupName(g)));
  if (!stdin && groups.length === 0) throw new UsageError('-g GROUP is needed (or --stdin to read lines from stdin)');
  if (stdin && (groups.length > 0 || argv.spread !== undefined)) throw new UsageError('--stdin reads lines from stdin: no -g or -s with it');
  const spreads = list(argv.spread);
  for (const s of spreads) if (s.trim() === '') throw new UsageError('-s needs a daemon: PORT, PORT@HOST or HOST:PORT');
  const daemons = (spreads.length ? spreads : [String(DEFAULT_SPREAD_PORT)]).map((s) => usage(() => parseDaemonAddress(s)));
  const name = argv.name as string | undefined;
  if (name !== undefined) usage(() => validatePrivateName(name));
  const format = (argv['log-format'] as string | undefined) ?? DEFAULT_LOG_FORMAT;
  if (!(LOG_FORMATS as readonly string[]).includes(format)) throw new UsageError(`bad --log-format "${format}": expected ${LOG_FORMATS.join(', ')}`);
  const opt = (o: string): unknown => (argv as Record<string, unknown>)[o];
  return {
    groups,
    daemons,
    name,
    connectTimeout: opt('connect-timeout') === undefined ? DEFAULT_CONNECT_TIMEOUT : integer(opt('connect-timeout'), '--connect-timeout', 1),
    format: format as LogFormat,
    tagged: argv.tag,
    intervalMs: opt('interval') === undefined ? DEFAULT_INTERVAL : integer(opt('interval'), '--interval', MIN_INTERVAL),
    top: opt('top') === undefined ? DEFAULT_TOP : integer(opt('top'), '--top', 1, 1000),
    topCapacity: opt('top-capacity') === undefined ? DEFAULT_TOP_CAPACITY : integer(opt('top-capacity'), '--top-capacity', 1, 10_000_000),
    distinctCap: opt('distinct-cap') === undefined ? DEFAULT_DISTINCT_CAP : integer(opt('distinct-cap'), '--distinct-cap', MIN_DISTINCT_CAP, 100_000_000),
    json: argv.json,
    exitAfter: opt('exit-after') === undefined ? undefined : integer(opt('exit-after'), '--exit-after', 1),
    http: opt('http') === undefined ? undefined : usage(() => parseHostPort(String(opt('http')), '--http')),
    stdin,
    dedup: argv.dedup,
  };
}

export async function run(args: string[]): Promise<number> {
  const cfg = await parseArgs(args);
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

    const take = (data: Buffer, sender: string): void => {
      if (finished) return;
      remaining -= agg.addMessage(data, sender, remaining);
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
    const backoff = exponentialBackoff();
    let next = 0;
    const connectAny = async (): Promise<SpreadClient> => {
      let last: unknown;
      for (let k = 0; k < cfg.daemons.length; k++) {
        const d = cfg.daemons[(next + k) % cfg.daemons.length]!;
        try {
          const c = await SpreadClient.connect({ daemon: d, name: cfg.name, membership: true, connectTimeout: cfg.connectTimeout, signal: quit.signal });
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
        if (ev.kind !== 'data') return;
        const f = ev.frame;
        const data = dedup ? dedup.filter(f.sender, f.messType, f.data) : f.data;
        if (!data) {
          duplicates++;
          return;
        }
        take(data, f.sender);
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
