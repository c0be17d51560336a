/**
 * `spread-pipe tail`: join groups and write each message to stdout as is,
 * adding a newline only where a message lacks one (how one watches the logs
 * with spuser today, without spuser's decoration).
 */
import yargs from 'yargs';
import { EPILOGUE, EXIT_FAILURE, EXIT_OK, PROGRAM, log, usage } from './common.js';
import { failUsage } from './common.js';
import { SpreadClient, type SpreadEvent } from '../spread/client.js';
import { parseDaemonAddress, validateGroupName, validatePrivateName } from '../spread/address.js';
import { serviceBitsName } from '../spread/constants.js';
import { errorMessage } from '../errors.js';
import { DuplicateFilter } from '../dedup.js';

const NL = Buffer.from('\n');

export async function run(args: string[]): Promise<number> {
  const argv = await yargs(args)
    .scriptName(`${PROGRAM} tail`)
    .usage('$0 -g GROUP [-g GROUP ...] [-s DAEMON] [options]\n\nJoin Spread groups and write every message to stdout, byte-exact.')
    .option('group', { alias: 'g', type: 'string', array: true, demandOption: true, describe: 'group to join (repeatable)' })
    .option('spread', { alias: 's', type: 'string', default: '4803', describe: 'daemon: PORT (unix socket /tmp/PORT), PORT@HOST or HOST:PORT' })
    .option('name', { alias: 'n', type: 'string', describe: 'private name, 1-10 characters (default derived from the pid)' })
    .option('show-sender', { type: 'boolean', default: false, describe: 'prefix each message with its sender and groups' })
    .option('membership', { type: 'boolean', default: false, describe: 'print membership changes as lines starting with "#"' })
    .option('dedup', { type: 'boolean', default: true, describe: 'drop lines a --ack publisher sent twice (--no-dedup shows them)' })
    .option('count', { type: 'number', describe: 'exit after this many data messages' })
    .option('connect-timeout', { type: 'number', default: 5000, describe: 'milliseconds to connect and handshake' })
    .example('$0 -g jigdo -s 4803@loghost', 'watch the jigdo access logs')
    .epilogue(EPILOGUE)
    .help('help')
    .version(false)
    .strict()
    .fail(failUsage)
    .parseAsync();

  const groups = usage(() => argv.group.map((g) => validateGroupName(String(g))));
  const daemon = usage(() => parseDaemonAddress(argv.spread));
  if (argv.name !== undefined) usage(() => validatePrivateName(argv.name!));
  const count = argv.count;
  if (count !== undefined && (!Number.isInteger(count) || count < 1)) throw usage(() => new Error(`--count must be a positive integer`));

  const client = await SpreadClient.connect({ daemon, name: argv.name, membership: argv.membership, connectTimeout: argv['connect-timeout'] });
  for (const g of groups) client.join(g);

  const out = process.stdout;
  const dedup = argv.dedup ? new DuplicateFilter() : undefined;
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
      if (ev.kind === 'data') {
        const f = ev.frame;
        // Repeats of a --ack stream (resent after a lost ack) are dropped; partial batches keep their new lines.
        const data = dedup ? dedup.filter(f.sender, f.messType, f.data) : f.data;
        if (!data) return;
        if (argv['show-sender']) emit(Buffer.from(`${f.sender} -> ${f.groups.join(',')}: `, 'latin1'));
        emit(data);
        if (data.length === 0 || data[data.length - 1] !== 0x0a) emit(NL);
        if (count !== undefined && ++received >= count) finish(EXIT_OK);
      } else if (argv.membership) {
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
