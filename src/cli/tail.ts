/**
 * `spread-pipe tail`: join groups and write each message to stdout as is,
 * adding a newline only where a message lacks one (how one watches the logs
 * with spuser today, without spuser's decoration).
 */
import { EPILOGUE, EXIT_FAILURE, EXIT_OK, MODES, PROGRAM, UsageError, localSocketHint, log } from './common.js';
import { type OptTable, parseCommandLine, usage } from './args.js';
import { DEFAULT_CONNECT_TIMEOUT, SpreadClient, type SpreadClientOptions, type SpreadEvent, resolveClientOptions } from '../spread/client.js';
import { type DaemonAddress, parseDaemonAddress, validateGroupName } from '../spread/address.js';
import { TLS_CLIENT_OPTIONS, TLS_DAEMON_FORM, clientTls } from './tls-args.js';
import { DEFAULT_SPREAD_PORT, UNIX_SOCKET_DIR, serviceBitsName } from '../spread/constants.js';
import { ErrorCodes, errorMessage, isSpreadPipeError } from '../errors.js';
import { DuplicateFilter } from '../dedup.js';
import { isStreamMarker } from '../ack.js';
import { type TargetUser, USER_OPTIONS, becomeUser, parseUser } from './user.js';

const NL = Buffer.from('\n');
const DEFAULT_DAEMON = String(DEFAULT_SPREAD_PORT);

export const TAIL_OPTIONS = {
  group: { alias: 'g', type: 'string', repeat: true, describe: 'group to join' },
  spread: { alias: 's', type: 'string', field: 'daemon', default: DEFAULT_DAEMON, describe: `daemon: PORT (the unix socket ${UNIX_SOCKET_DIR}/PORT), PORT@HOST, HOST:PORT or ${TLS_DAEMON_FORM}` },
  name: { alias: 'n', type: 'string', field: 'name', describe: 'private name, 1-10 characters [default: derived from the pid]' },
  'show-sender': { type: 'boolean', default: false, describe: 'prefix each message with its sender and groups' },
  membership: { type: 'boolean', default: false, describe: 'print membership changes as lines starting with "#"' },
  dedup: { type: 'boolean', default: true, describe: 'drop lines a --ack publisher sent twice (--no-dedup shows them)' },
  count: { type: 'string', describe: 'exit after exactly this many data messages (at least 1)' },
  'connect-timeout': { type: 'string', default: DEFAULT_CONNECT_TIMEOUT, field: 'connectTimeout', describe: 'milliseconds to connect and handshake' },
  ...USER_OPTIONS,
  ...TLS_CLIENT_OPTIONS,
} as const satisfies OptTable;

export interface TailConfig {
  client: SpreadClientOptions & { daemon: DaemonAddress };
  groups: string[];
  showSender: boolean;
  dedup: boolean;
  count: number | undefined;
  defaultDaemon: boolean;
  user: TargetUser | undefined;
}

/** Parse and check tail's command line; undefined after --help. */
export async function parseArgs(argv: string[]): Promise<TailConfig | undefined> {
  const t = TAIL_OPTIONS;
  const g = await parseCommandLine(argv, t, {
    scriptName: `${PROGRAM} tail`,
    usage: `$0 -g GROUP [-g GROUP ...] [-s DAEMON] [options]\n\nJoin Spread groups and write every message to stdout, byte-exact.\n${MODES}`,
    examples: [['$0 -g jigdo -s 4803@loghost', 'watch the jigdo access logs']],
    epilogue: EPILOGUE,
  });
  if (!g) return undefined;
  const groups = g.list('group').map((x) => usage(t, () => validateGroupName(x), g.label('group')));
  if (groups.length === 0) throw new UsageError('at least one -g GROUP is needed');
  const count = g.int('count', 'messages');
  if (count !== undefined && count < 1) throw new UsageError(`${g.label('count')}: must be at least 1 message, got ${count}`);
  const client = usage(t, () =>
    resolveClientOptions({ daemon: clientTls(g, [usage(t, () => parseDaemonAddress(g.str('spread') ?? DEFAULT_DAEMON), g.label('spread'))])[0]!, name: g.str('name'), membership: g.bool('membership'), connectTimeout: g.int('connect-timeout', 'milliseconds') }),
  );
  return { client, groups, showSender: g.bool('show-sender'), dedup: g.bool('dedup'), count, defaultDaemon: !g.has('spread'), user: parseUser(g) };
}

export async function run(args: string[]): Promise<number> {
  const cfg = await parseArgs(args);
  if (!cfg) return EXIT_OK;
  const daemon = cfg.client.daemon;
  // tail opens nothing that needs root: it drops before it connects.
  becomeUser(cfg.user);
  let client: SpreadClient;
  try {
    client = await SpreadClient.connect(cfg.client);
  } catch (e) {
    const hint = isSpreadPipeError(e, ErrorCodes.COULD_NOT_CONNECT) ? localSocketHint(daemon, !cfg.defaultDaemon) : '';
    if (hint) {
      log(`${errorMessage(e)}${hint}`);
      return EXIT_FAILURE;
    }
    throw e;
  }
  for (const g of cfg.groups) client.join(g);
  const count = cfg.count;

  const out = process.stdout;
  const dedup = cfg.dedup ? new DuplicateFilter() : undefined;
  let pending: Buffer[] = [];
  let scheduled = false;
  let received = 0;
  const flush = (): void => {
    scheduled = false;
    if (pending.length === 0) return;
    const chunk = pending.length === 1 ? pending[0]! : Buffer.concat(pending);
    pending = [];
    if (!out.write(chunk)) {
      client.pause();
      out.once('drain', () => client.resume());
    }
  };
  const emit = (b: Buffer): void => {
    pending.push(b);
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };

  return new Promise<number>((resolve) => {
    let finished = false;
    const finish = (code: number): void => {
      if (finished) return;
      finished = true;
      flush();
      client.removeAllListeners('close');
      client.disconnect().finally(() => {
        if (out.writableLength === 0) resolve(code);
        else out.once('drain', () => resolve(code));
      });
    };
    client.on('message', (ev: SpreadEvent) => {
      // Messages that came in the same chunk as the count-th are not ours to print.
      if (finished) return;
      if (ev.kind === 'data') {
        const f = ev.frame;
        // Repeats of a --ack stream (resent after a lost ack) are dropped; partial batches keep their new lines.
        const data = dedup ? dedup.filter(f.sender, f.messType, f.data) : f.data;
        // A --ack marker is no line (ack.ts); with --dedup the filter skips it.
        if (!data || (!dedup && isStreamMarker(f.sender, data))) return;
        if (cfg.showSender) emit(Buffer.from(`${f.sender} -> ${f.groups.join(',')}: `, 'latin1'));
        emit(data);
        if (data.length === 0 || data[data.length - 1] !== 0x0a) emit(NL);
        if (count !== undefined && ++received >= count) finish(EXIT_OK);
      } else if (cfg.client.membership) {
        emit(Buffer.from(`${describe(ev)}\n`, 'latin1'));
      }
    });
    client.on('close', (err?: Error) => {
      flush();
      log(`lost the session with ${daemon.label}: ${err ? errorMessage(err) : 'closed'}`);
      finished = true;
      resolve(EXIT_FAILURE);
    });
    process.once('SIGINT', () => finish(EXIT_OK));
    process.once('SIGTERM', () => finish(EXIT_OK));
  });
}

function describe(ev: Exclude<SpreadEvent, { kind: 'data' }>): string {
  switch (ev.kind) {
    case 'membership': {
      const i = ev.info;
      const who = i.changedMember ? ` ${i.changedMember}` : '';
      return `# membership ${i.group}: ${i.cause ?? 'change'}${who}; members (${i.members.length}): ${i.members.join(' ')}; group id ${i.groupId.join('.')}`;
    }
    case 'transitional':
      return `# transitional ${ev.group}: group id ${ev.groupId.join('.')}`;
    case 'self-leave':
      return `# left ${ev.group}`;
    case 'reject':
      return `# reject ${serviceBitsName(ev.oldType)} to ${ev.frame.groups.join(',')}`;
  }
}
