/**
 * `--metrics HOST:PORT` for pipe mode, the syslog bridge and --daemon: the
 * counters each already prints on SIGUSR1 and at exit, in Prometheus text
 * format (src/metrics.ts). Names follow Prometheus conventions: a
 * `spread_pipe_` prefix, `_total` on counters, base units (bytes), one label
 * for the reason or the file rather than one metric each.
 */
import type { Registry } from 'prom-client';
import { type HostPort, counter, gauge, newRegistry, serveMetrics } from '../metrics.js';
import type { Publisher } from '../publisher.js';
import type { LineSplitter } from '../reader.js';
import type { Spool } from '../spool.js';
import type { SyslogBridge } from '../syslog/bridge.js';
import type { SpreadDaemon } from '../spread/daemon.js';
import type { LogWriter } from '../writer.js';
import { log } from './common.js';

/**
 * Listen for /metrics (before stdin is read: a port in use stops the start);
 * the mode adds its collectors to `registry` once its parts exist.
 */
export async function startMetrics(at: HostPort): Promise<{ registry: Registry; close(): Promise<void> }> {
  const r = newRegistry();
  const server = await serveMetrics(at, r);
  const a = server.address();
  log(`metrics on http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}/metrics`);
  return {
    registry: r,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Pipe mode: what the exit line says (read, truncated, sent, dropped by reason, connects, failovers, --ack, --spool). */
export function pipeMetrics(r: Registry, src: { publisher: Publisher; splitter: LineSplitter; spool?: Spool; carried?: number }): void {
  const { publisher: p, splitter, spool } = src;
  const c = p.counters;
  counter(r, 'lines_read_total', 'Lines read from stdin.', () => splitter.lines);
  counter(r, 'lines_truncated_total', 'Lines cut at --max-line.', () => splitter.truncated);
  counter(r, 'lines_accepted_total', 'Lines handed to the publisher (stdin and syslog).', () => c.accepted);
  counter(r, 'lines_sent_total', 'Lines written to a daemon session.', () => c.linesSent);
  counter(r, 'messages_sent_total', 'Spread messages written to a daemon session.', () => c.messagesSent);
  counter(r, 'sent_bytes_total', 'Message bytes written to a daemon session.', () => c.bytesSent);
  counter(r, 'lines_dropped_total', 'Lines dropped, by reason.', () => Object.entries(c.dropped).map(([reason, v]) => [{ reason }, v] as const), ['reason']);
  counter(r, 'notices_total', '--gap-notice lines queued (not in the line counters).', () => c.notices);
  counter(r, 'connects_total', 'Sessions opened with a daemon.', () => c.connects);
  counter(r, 'disconnects_total', 'Sessions lost.', () => c.disconnects);
  counter(r, 'failovers_total', 'Moves to the next daemon of -s.', () => c.failovers);
  counter(r, 'failbacks_total', 'Returns to the first daemon of -s.', () => c.failbacks);
  gauge(r, 'queued_lines', 'Lines waiting in the queue.', () => p.queued.lines);
  const rel = p.reliable;
  if (rel) {
    counter(r, 'ack_acked_lines_total', '--ack: lines acknowledged by the receiver.', () => rel.counters.acked);
    counter(r, 'ack_resent_lines_total', '--ack: lines sent again.', () => rel.counters.resent);
    gauge(r, 'ack_unacked_lines', '--ack: lines sent and not yet acknowledged.', () => rel.window.lines);
  }
  if (spool) {
    gauge(r, 'spool_unacked_lines', '--spool: lines on disk not yet acknowledged.', () => spool.unacked);
    gauge(r, 'spool_bytes', '--spool: bytes on disk.', () => spool.bytes);
    gauge(r, 'spool_carried_lines', '--spool: lines a previous run left in the spool, sent (or dropped) by this one.', () => src.carried ?? 0);
  }
}

/** The nginx syslog bridge: datagrams, lines, truncated, refused by reason. */
export function syslogMetrics(r: Registry, bridge: SyslogBridge): void {
  counter(r, 'syslog_datagrams_total', 'Syslog datagrams received.', () => bridge.datagrams);
  counter(r, 'syslog_lines_total', 'Log lines taken from syslog datagrams.', () => bridge.lines);
  counter(r, 'syslog_truncated_total', 'Syslog lines cut at --max-line.', () => bridge.truncated);
  counter(r, 'syslog_refused_total', 'Datagrams refused, by reason.', () => Object.entries(bridge.bad).map(([reason, v]) => [{ reason }, v] as const), ['reason']);
}

/** A LogWriter's counters: --daemon's --write files (and `write` mode's, which shares the writer). */
export function writerMetrics(r: Registry, writer: LogWriter): void {
  counter(r, 'write_messages_total', 'Messages appended to log files.', () => writer.stats.messages);
  counter(r, 'write_bytes_total', 'Bytes appended to log files.', () => writer.stats.bytes);
  counter(r, 'write_errors_total', 'Log file write errors.', () => writer.stats.errors);
  counter(r, 'write_dropped_total', 'Messages lost to log file write errors.', () => writer.stats.dropped);
  counter(r, 'write_file_bytes_total', 'Bytes appended, per log file.', () => [...writer.written].map(([file, v]) => [{ file }, v] as const), ['file']);
  counter(r, 'write_pipe_lost_bytes_total', 'Bytes a piped program had not read from its pipe when it died.', () => [...writer.fileStats().values()].reduce((n, f) => n + (f.lostBytes ?? 0), 0));
}

/** --daemon: sessions, groups, deliveries, bytes, refusals, the --write files, session buffer use. */
export function daemonMetrics(r: Registry, d: SpreadDaemon, writer?: LogWriter, dedup?: { duplicates: number }): void {
  gauge(r, 'daemon_sessions', 'Client sessions past the handshake.', () => d.getStats().sessions);
  gauge(r, 'daemon_connections', 'Client connections, in the handshake or past it.', () => d.getStats().connections);
  gauge(r, 'daemon_groups', 'Groups with at least one member.', () => d.getStats().groups.length);
  gauge(r, 'daemon_group_members', 'Members per group.', () => d.getStats().groups.map(([group, n]) => [{ group }, n] as const), ['group']);
  counter(r, 'daemon_messages_in_total', 'Messages received from clients.', () => d.getStats().messagesIn);
  counter(r, 'daemon_deliveries_total', 'Messages delivered to members (one per receiving session).', () => d.getStats().deliveries);
  counter(r, 'daemon_received_bytes_total', 'Bytes received from clients.', () => d.getStats().bytesIn);
  counter(r, 'daemon_rejected_total', 'Connections refused (--allow, handshake, limits).', () => d.getStats().rejected);
  gauge(r, 'daemon_pending_connections', 'TCP connections not yet past the Spread handshake.', () => d.getStats().pending);
  counter(
    r,
    'daemon_pending_refused_total',
    'Connections closed unread over --max-pending-per-address (cap="per-address") or --max-pending (cap="total"); among daemon_rejected_total.',
    () => {
      const s = d.getStats();
      return [
        [{ cap: 'per-address' }, s.pendingRefusedPerAddress],
        [{ cap: 'total' }, s.pendingRefusedTotal],
      ] as const;
    },
    ['cap'],
  );
  counter(r, 'daemon_protocol_errors_total', 'Sessions cut for breaking the protocol.', () => d.getStats().protocolErrors);
  counter(r, 'daemon_forged_tags_total', 'Mutual TLS: messages refused for a host tag the client certificate does not name.', () => d.getStats().forgedTags);
  gauge(r, 'daemon_tls_handshakes', 'TLS handshakes in progress.', () => d.getStats().tlsHandshaking);
  counter(r, 'daemon_slow_killed_total', 'Sessions cut for not reading (session buffer full).', () => d.getStats().slowKilled);
  gauge(r, 'daemon_session_buffer_bytes', 'Bytes queued to each session, waiting for it to read.', () => d.sessionList().map((s) => [{ session: s.name }, s.queued] as const), ['session']);
  if (writer) writerMetrics(r, writer);
  if (dedup) counter(r, 'write_duplicates_dropped_total', '--write: repeats of a --ack stream not written twice.', () => dedup.duplicates);
}
