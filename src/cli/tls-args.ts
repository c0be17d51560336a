/**
 * The TLS options of the command line (#15): the clients' (pipe mode, the
 * syslog bridge, tail, write, top: what to trust and present to tls://
 * daemons) and the daemon's (certificate, key, client CA of its tls://
 * listeners). Files are read here, before anything starts: an unreadable
 * or unusable one is a usage error naming its option and the file.
 */
import { type Given, type OptTable, usage } from './args.js';
import { UsageError } from './common.js';
import type { DaemonAddress } from '../spread/address.js';
import { DEFAULT_MAX_TLS_HANDSHAKES, type TlsServerFiles, loadServerMaterial, readPem, resolveTlsClientOptions } from '../spread/tls.js';

/** How -s describes a TLS daemon, for each mode's --help. */
export const TLS_DAEMON_FORM = 'tls://HOST:PORT (TLS, see --tls-ca)';

export const TLS_CLIENT_OPTIONS = {
  'tls-ca': { type: 'string', field: 'tlsCa', describe: "PEM file of the CA(s) that sign tls:// daemons' certificates [default: the system's CAs]" },
  'tls-cert': { type: 'string', field: 'tlsCert', describe: 'PEM client certificate for tls:// daemons that require one (--tls-client-ca there); its name is the host tag allowed; with --tls-key' },
  'tls-key': { type: 'string', field: 'tlsKey', describe: 'PEM private key of --tls-cert' },
  'tls-servername': { type: 'string', field: 'tlsServername', describe: "name tls:// daemons' certificates must carry [default: the HOST of each tls:// address]" },
} as const satisfies OptTable;

export const TLS_DAEMON_OPTIONS = {
  'tls-cert': { type: 'string', field: 'tlsCert', describe: 'PEM certificate (chain) of the tls:// listeners; re-read on SIGHUP' },
  'tls-key': { type: 'string', field: 'tlsKey', describe: 'PEM private key of --tls-cert; re-read on SIGHUP' },
  'tls-client-ca': {
    type: 'string',
    field: 'tlsClientCa',
    describe: "mutual TLS: only clients with a certificate this CA signed get in, and a client's lines must carry its certificate's name (CN or a DNS SAN) as host tag; re-read on SIGHUP",
  },
  'max-tls-handshakes': { type: 'string', default: DEFAULT_MAX_TLS_HANDSHAKES, field: 'maxTlsHandshakes', describe: 'TLS handshakes in progress at once; further connections are closed unread (and counted)' },
} as const satisfies OptTable;

const CLIENT_FLAGS = Object.keys(TLS_CLIENT_OPTIONS);

/**
 * The client's --tls-* read and attached to each tls:// daemon of `daemons`.
 * --tls-* without any tls:// daemon is a usage error: it would be ignored.
 */
export function clientTls(g: Given, daemons: DaemonAddress[]): DaemonAddress[] {
  const given = CLIENT_FLAGS.filter((f) => g.has(f));
  if (given.length === 0) return daemons;
  if (!daemons.some((d) => d.kind === 'tls')) throw new UsageError(`${g.label(given[0]!)}: no -s names a tls://HOST:PORT daemon, so it would be ignored`);
  // Each file on its own first, so that the message names the option it came from.
  for (const [flag, what] of [['tls-ca', 'CA file'], ['tls-cert', 'certificate'], ['tls-key', 'key']] as const) {
    const f = g.str(flag);
    if (f !== undefined) usage(g.table, () => readPem(what, f), g.label(flag));
  }
  const cfg = labelled(g, { key: 'tls-key', certificate: 'tls-cert', CA: 'tls-ca' }, () =>
    resolveTlsClientOptions({ ca: g.str('tls-ca'), cert: g.str('tls-cert'), key: g.str('tls-key'), servername: g.str('tls-servername') }),
  );
  return daemons.map((d) => (d.kind === 'tls' ? { ...d, tls: cfg } : d));
}

/** The daemon's --tls-* read and checked; undefined without them. */
export function daemonTls(g: Given): TlsServerFiles | undefined {
  const cert = g.str('tls-cert');
  const key = g.str('tls-key');
  const clientCa = g.str('tls-client-ca');
  if (cert === undefined && key === undefined && clientCa === undefined) return undefined;
  if (cert === undefined || key === undefined) {
    const given = cert !== undefined ? 'tls-cert' : key !== undefined ? 'tls-key' : 'tls-client-ca';
    throw new UsageError(`${g.label(given)}: a tls:// listener needs both --tls-cert and --tls-key`);
  }
  for (const [flag, what] of [['tls-cert', 'certificate'], ['tls-key', 'key'], ['tls-client-ca', 'client CA file']] as const) {
    const f = g.str(flag);
    if (f !== undefined) usage(g.table, () => readPem(what, f), g.label(flag));
  }
  const files = { cert, key, clientCa };
  labelled(g, { key: 'tls-key', certificate: 'tls-cert', client: 'tls-client-ca' }, () => loadServerMaterial(files));
  return files;
}

/** A file's SP_ERR_TLS_FILE as a usage error named after the option of the file it names ("TLS key F: ..."). */
function labelled<T>(g: Given, flags: Record<string, string>, fn: () => T): T {
  try {
    return usage(g.table, fn);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    const what = /^TLS (\w+)/.exec(e.message)?.[1];
    const flag = what && flags[what];
    if (flag && !e.message.startsWith('--')) throw new UsageError(`${g.label(flag)}: ${e.message}`);
    throw e;
  }
}
