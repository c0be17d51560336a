/** `top`'s counters in Prometheus text format (its --http page's /metrics). */
import type { Registry } from 'prom-client';
import { counter, gauge, newRegistry, type Labels } from '../metrics.js';
import type { Aggregator } from './aggregate.js';
import { display } from './aggregate.js';
import { UNPARSED_REASONS } from './parse.js';

export function topRegistry(a: Aggregator, extra: { duplicates: () => number }): Registry {
  const r = newRegistry();
  counter(r, 'top_lines_total', 'Log lines received, parsed or not.', () => a.lines);
  counter(r, 'top_requests_total', 'Log lines that parsed as requests.', () => a.requests);
  counter(r, 'top_response_bytes_total', 'Response bytes (%b) of the requests, summed.', () => a.bytes);
  counter(r, 'top_input_bytes_total', 'Log bytes received, line feeds included.', () => a.inputBytes);
  counter(r, 'top_duplicate_messages_total', 'Messages a --ack publisher sent twice, dropped before counting.', extra.duplicates);
  counter(
    r,
    'top_unparsed_lines_total',
    'Lines that did not parse, by reason.',
    () => UNPARSED_REASONS.map((reason, i) => [{ reason }, a.unparsedBy[i]!] as const),
    ['reason'],
  );
  counter(
    r,
    'top_responses_total',
    'Requests by HTTP status code.',
    function* () {
      for (let c = 100; c < 1000; c++) if (a.status[c]! > 0) yield [{ code: String(c) }, a.status[c]!] as const;
    },
    ['code'],
  );
  const bySource = (m: Map<string, { requests: number; bytes: number; lines: number }>, label: string, f: 'requests' | 'bytes' | 'lines') =>
    function* (): Generator<readonly [Labels, number]> {
      for (const [k, s] of m) yield [{ [label]: display(k) }, s[f]] as const;
    };
  counter(r, 'top_host_lines_total', 'Lines per web server (host tag).', bySource(a.hosts, 'host', 'lines'), ['host']);
  counter(r, 'top_host_requests_total', 'Requests per web server (host tag).', bySource(a.hosts, 'host', 'requests'), ['host']);
  counter(r, 'top_host_response_bytes_total', 'Response bytes per web server (host tag).', bySource(a.hosts, 'host', 'bytes'), ['host']);
  counter(r, 'top_vhost_requests_total', 'Requests per virtual host (vcombined).', bySource(a.vhosts, 'vhost', 'requests'), ['vhost']);
  counter(r, 'top_vhost_response_bytes_total', 'Response bytes per virtual host (vcombined).', bySource(a.vhosts, 'vhost', 'bytes'), ['vhost']);
  gauge(r, 'top_distinct_clients', 'Distinct client addresses since start (a HyperLogLog estimate past the cap).', () => a.seen.distinct());
  gauge(r, 'top_online_clients', 'Distinct client addresses in the online window (5 minutes).', () => a.seen.online(Date.now()));
  return r;
}
