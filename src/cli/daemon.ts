/**
 * `spread-pipe --daemon`: the built-in Spread daemon and its log writer.
 */
import fs from 'node:fs';
import path from 'node:path';
import yargs from 'yargs';
import { DEFAULT_REPORT_INTERVAL, EPILOGUE, EXIT_OK, PROGRAM, log, usage, UsageError } from './common.js';
import { DaemonReport } from './daemon-report.js';
import { failUsage } from './common.js';
import { type ListenSpec, SpreadDaemon, defaultDaemonName, DEFAULT_SESSION_BUFFER } from '../spread/daemon.js';
import { DEFAULT_SPREAD_PORT, MAX_PROC_NAME, UNIX_SOCKET_DIR, isNameByte } from '../spread/constants.js';
import { validateGroupName } from '../spread/address.js';
import { parseCidr } from '../cidr.js';
import { DEFAULT_MAX_OPEN_FILES, LogWriter } from '../writer.js';
import { WriteDedup } from '../write-dedup.js';
import { checkLogDir, checkLogFile } from '../write-paths.js';
import { parseSize } from './size.js';
import { ErrorCodes, SpreadPipeError, errorMessage } from '../errors.js';

function parseListen(text: string): ListenSpec {
  if (text.startsWith('/')) return { path: text };
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(text) ?? /^()()(\d+)$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) throw new UsageError(`bad --listen "${text}": expected [HOST:]PORT or /unix/path`);
  const host = m[1] || m[2] || undefined;
  return host ? { host, port } : { port };
}

/** A session buffer below one largest message (144000 + 48 + 100 x 32) would cut off anyone receiving one. */
const MIN_SESSION_BUFFER = 256 * 1024;

/** Daemon names go into every private group name: 1..19 characters '$'..'~' except '#'. */
function checkDaemonName(name: string): string {
  const ok = name.length >= 1 && name.length < MAX_PROC_NAME && [...name].every((c) => isNameByte(c.charCodeAt(0)));
  if (!ok) throw new UsageError(`bad --name "${name}": 1..${MAX_PROC_NAME - 1} characters from '$' to '~', not '#'`);
  return name;
}

/** Run a start-up check of a --write / --write-split path; its failure names the option. */
function checked(opt: string, check: () => void): void {
  try {
    check();
  } catch (e) {
    throw new SpreadPipeError(ErrorCodes.WRITE, `${opt}: ${errorMessage(e)}`, { cause: e });
  }
}

function parseAssignment(opt: string, text: string): [string, string] {
  const i = text.indexOf('=');
  if (i <= 0 || i === text.length - 1) throw new UsageError(`bad ${opt} "${text}": expected GROUP=PATH`);
  return [usage(() => validateGroupName(text.slice(0, i))), text.slice(i + 1)];
}

export async function run(args: string[]): Promise<number> {
  const argv = await yargs(args)
    .scriptName(`${PROGRAM} --daemon`)
    .usage('$0 [options]\n\nRun a minimal Spread daemon (client protocol of Spread 3.x/4.x/5.x), optionally writing groups to files.')
    .option('listen', { alias: 'l', type: 'string', array: true, describe: `TCP [HOST:]PORT or unix /path (repeatable); default ${DEFAULT_SPREAD_PORT} and ${UNIX_SOCKET_DIR}/${DEFAULT_SPREAD_PORT}` })
    .option('unix', { type: 'boolean', default: true, describe: `also listen on ${UNIX_SOCKET_DIR}/PORT for each TCP port, as Spread does (--no-unix: do not)` })
    .option('name', { alias: 'n', type: 'string', default: defaultDaemonName(), describe: 'daemon name in private groups (#user#NAME)' })
    .option('allow', { type: 'string', array: true, describe: 'CIDR allowed to connect over TCP (repeatable); default everyone' })
    .option('session-buffer', { type: 'string', default: String(DEFAULT_SESSION_BUFFER), describe: 'bytes queued toward one slow client before it is cut off (e.g. 64M)' })
    .option('write', { alias: 'w', type: 'string', array: true, describe: 'GROUP=FILE: append every message to GROUP to FILE (repeatable)' })
    .option('dedup', { type: 'boolean', default: true, describe: 'drop lines a --ack publisher sent twice; state in FILE.seen / DIR/.seen (--no-dedup: write all)' })
    .option('write-split', { type: 'string', array: true, describe: 'GROUP=DIR: one file per host tag (first word) in DIR (repeatable)' })
    .option('report-interval', {
      type: 'number',
      default: DEFAULT_REPORT_INTERVAL,
      describe: 'ms per report of refused connections, dropped sessions and connects beyond the first lines (one line per kind)',
    })
    .option('max-open-files', { type: 'number', default: DEFAULT_MAX_OPEN_FILES, describe: 'files --write-split keeps open at once; the least recently used is closed' })
    .example('$0', 'listen on 4803 and /tmp/4803')
    .example('$0 --listen 127.0.0.1:4803 --write-split jigdo=/var/log/jigdo', 'write one file per web server')
    .epilogue(`Signals: SIGHUP reopens log files (logrotate), SIGUSR1 prints sessions, groups and counters, SIGTERM flushes and exits.\n${EPILOGUE}`)
    .help('help')
    .version(false)
    .strict()
    .fail(failUsage)
    .parseAsync();

  const listen = (argv.listen ?? [String(DEFAULT_SPREAD_PORT)]).map((l) => parseListen(String(l)));
  const allow = usage(() => (argv.allow ?? []).map((c) => parseCidr(String(c))));
  const sessionBuffer = usage(() => parseSize(argv['session-buffer'], '--session-buffer'));
  const writes = (argv.write ?? []).map((w) => parseAssignment('--write', String(w)));
  const splits = (argv['write-split'] ?? []).map((w) => parseAssignment('--write-split', String(w)));
  const name = usage(() => checkDaemonName(argv.name));
  if (sessionBuffer < MIN_SESSION_BUFFER) throw new UsageError(`bad --session-buffer "${argv['session-buffer']}": at least ${MIN_SESSION_BUFFER} bytes (one largest message and more)`);
  const reportInterval = Number(argv['report-interval']);
  if (!Number.isInteger(reportInterval) || reportInterval < 1) throw new UsageError(`bad --report-interval "${argv['report-interval']}": expected a positive integer (ms)`);
  const maxFiles = Number(argv['max-open-files']);
  if (!Number.isInteger(maxFiles) || maxFiles < 1) throw new UsageError(`bad --max-open-files "${argv['max-open-files']}": expected a positive integer`);

  const dedup = argv.dedup ? new WriteDedup() : undefined;
  const writer = new LogWriter(
    (e) => {
      if (e.type === 'error') log(`cannot write ${e.path}: ${e.message}${e.dropped ? ` (${e.dropped} message(s) lost since the last report)` : ''}`);
      else if (e.type === 'reopen') log(`reopened log files (${e.files} were open)`);
    },
    maxFiles,
    undefined,
    dedup,
  );
  const target = (opt: string, journal: string, where: string): ReturnType<WriteDedup['add']> => {
    let t: ReturnType<WriteDedup['add']>;
    try {
      t = dedup!.add(journal);
    } catch (e) {
      const verb = fs.existsSync(journal) ? 'cannot use' : 'cannot create';
      throw new SpreadPipeError(ErrorCodes.WRITE, `${opt}: ${verb} the duplicate journal ${journal} (kept ${where} to drop --ack repeats; --no-dedup turns it off): ${errorMessage(e)}`, { cause: e });
    }
    const r = t.recovery;
    if (r.undone || r.truncated.length) log(`${journal}: ${r.undone} write(s) found unfinished after a crash; their lines will be taken again${r.truncated.length ? ` (cut back: ${r.truncated.join(', ')})` : ''}`);
    return t;
  };
  // Files and directories are tried before listening: a typo or a permission stops the start
  // with one line, instead of every message failing later.
  for (const [group, file] of writes) checked(`--write ${group}=${file}`, () => checkLogFile(file));
  for (const [group, dir] of splits) checked(`--write-split ${group}=${dir}`, () => checkLogDir(dir));
  // Journals are read before listening: a broken one stops the start, not a running daemon.
  const fileTargets = writes.map(([group, file]) => [group, file, dedup ? target(`--write ${group}=${file}`, `${file}.seen`, 'beside the file') : undefined] as const);
  const dirTargets = splits.map(([group, dir]) => [group, dir, dedup ? target(`--write-split ${group}=${dir}`, path.join(dir, '.seen'), 'in the directory') : undefined] as const);

  const daemon = await SpreadDaemon.start({ name, listen, allow, sessionBuffer });
  try {
    // Real Spread also serves its port on /tmp/PORT, so `-s PORT` works locally; port 0 is known now.
    if (argv.unix) for (const port of new Set(daemon.tcp.map((a) => a.port))) await daemon.listenOn({ path: `${UNIX_SOCKET_DIR}/${port}` });
  } catch (e) {
    await daemon.close();
    throw e;
  }
  const events = new DaemonReport(log, reportInterval);
  daemon.on('event', (e) => events.event(e));
  for (const a of daemon.tcp) log(`listening on ${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`);
  for (const p of daemon.unixPaths) log(`listening on ${p}`);
  log(`daemon "${daemon.daemonName}" ready`);

  for (const [group, file, t] of fileTargets) {
    if (t) daemon.tap(group, dedup!.tap(t, (data, note) => writer.append(file, data, note)));
    else daemon.tap(group, (f) => writer.append(file, f.data));
  }
  for (const [group, dir, t] of dirTargets) {
    if (t) daemon.tap(group, dedup!.tap(t, (data, note) => writer.appendSplit(dir, data, note)));
    else daemon.tap(group, (f) => writer.appendSplit(dir, f.data));
  }
  // The writer writes before any output of the turn leaves: a --ack publisher's copy then means "written".
  daemon.onFlushTaps(() => writer.flush());

  process.on('SIGHUP', () => writer.reopen());
  const report = (detail: boolean): void => {
    const s = daemon.getStats();
    log(`stats: sessions=${s.sessions} groups=${s.groups.length} messages_in=${s.messagesIn} deliveries=${s.deliveries} bytes_in=${s.bytesIn} rejected=${s.rejected} protocol_errors=${s.protocolErrors} slow_killed=${s.slowKilled} written=${writer.stats.messages} write_errors=${writer.stats.errors} write_dropped=${writer.stats.dropped} duplicates_dropped=${dedup?.duplicates ?? 0}`);
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
  writer.close();
  dedup?.close();
  events.flush();
  report(false);
  return EXIT_OK;
}
