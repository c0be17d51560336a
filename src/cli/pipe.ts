/**
 * Pipe mode (minimal publish path): each stdin line becomes one message
 * `HOST SP LINE LF` to the groups. The full pipe logger (queues, failover,
 * batching) replaces this.
 */
import os from 'node:os';
import yargs from 'yargs';
import { EPILOGUE, EXIT_OK, PROGRAM, usage } from './common.js';
import { SpreadClient, prepareSend } from '../spread/client.js';
import { parseDaemonAddress, validateDestination } from '../spread/address.js';
import { SERVICE_BY_NAME, type ServiceName } from '../spread/constants.js';

export async function run(args: string[]): Promise<number> {
  const argv = await yargs(args)
    .scriptName(PROGRAM)
    .usage('$0 -g GROUP [-s DAEMON] [options] < lines\n\nPublish each line of stdin to Spread groups as "HOST LINE".')
    .option('group', { alias: 'g', type: 'string', array: true, demandOption: true, describe: 'destination group (repeatable: one message to several groups)' })
    .option('spread', { alias: 's', type: 'string', default: '4803', describe: 'daemon: PORT (unix socket /tmp/PORT), PORT@HOST or HOST:PORT' })
    .option('host', { alias: 'h', type: 'string', describe: 'host tag put before each line (default: this machine\'s host name)' })
    .option('tag', { type: 'boolean', default: true, describe: 'prefix lines with the host tag (--no-tag sends the line alone)' })
    .option('service', { choices: Object.keys(SERVICE_BY_NAME), default: 'reliable', describe: 'Spread service type' })
    .epilogue(EPILOGUE)
    .help('help')
    .version(false)
    .strict()
    .parseAsync();
  const groups = usage(() => argv.group.map((g) => validateDestination(String(g))));
  const daemon = usage(() => parseDaemonAddress(argv.spread));
  const prepared = usage(() => prepareSend(groups, { service: SERVICE_BY_NAME[argv.service as ServiceName] }));
  const prefix = argv.tag ? Buffer.from(`${argv.host ?? os.hostname()} `, 'latin1') : Buffer.alloc(0);

  const client = await SpreadClient.connect({ daemon, membership: false });
  let rest = Buffer.alloc(0);
  const publish = (line: Buffer): void => {
    client.send(prepared, Buffer.concat([prefix, line, Buffer.from('\n')]));
  };
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    let buf = rest.length ? Buffer.concat([rest, chunk]) : chunk;
    let nl: number;
    while ((nl = buf.indexOf(0x0a)) >= 0) {
      publish(buf.subarray(0, nl));
      buf = buf.subarray(nl + 1);
    }
    rest = Buffer.from(buf);
  }
  if (rest.length) publish(rest);
  await client.disconnect();
  return EXIT_OK;
}
