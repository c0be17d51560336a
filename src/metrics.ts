/**
 * Prometheus text format for every mode (`--metrics HOST:PORT`, and `top
 * --http`'s /metrics), with prom-client. The counters a mode already keeps
 * are read when Prometheus scrapes, never pushed on the hot path: a metric
 * here costs nothing per line.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { ErrorCodes, SpreadPipeError } from './errors.js';
import { parseListenAddress } from './spread/address.js';

/** Loopback unless the admin names another address. @default '127.0.0.1' */
export const DEFAULT_METRICS_HOST = '127.0.0.1';
export const METRICS_PREFIX = 'spread_pipe_';

export interface HostPort {
  host: string;
  port: number;
}

/** `PORT`, `HOST:PORT` or `[V6]:PORT` (spread/address.ts's listen forms, TCP only); a bare port listens on loopback. */
export function parseHostPort(text: string): HostPort {
  const l = parseListenAddress(text);
  if ('path' in l) throw new SpreadPipeError(ErrorCodes.INVALID_ARGUMENT, `bad address "${text}": expected PORT, HOST:PORT or [IPv6]:PORT (HTTP listens on TCP)`);
  return { host: l.host ?? DEFAULT_METRICS_HOST, port: l.port };
}

export type Labels = Record<string, string>;
/** What a collector reads at scrape time: one value, or one per label set. */
export type Reading = number | Iterable<readonly [Labels, number]>;

/** A registry with the process metrics (CPU, memory, event-loop lag) prom-client gathers. */
export function newRegistry(): Registry {
  const r = new Registry();
  collectDefaultMetrics({ register: r, prefix: METRICS_PREFIX });
  return r;
}

function apply(m: { reset(): void; set?(l: Labels, v: number): void; inc?(l: Labels, v: number): void }, read: Reading, kind: 'inc' | 'set'): void {
  m.reset();
  if (typeof read === 'number') {
    if (kind === 'inc') (m as Counter).inc(read);
    else (m as Gauge).set(read);
    return;
  }
  for (const [labels, v] of read) {
    if (kind === 'inc') (m as Counter).inc(labels, v);
    else (m as Gauge).set(labels, v);
  }
}

/** A counter (`name` must end in `_total`) whose value is read from the mode's own counters at scrape time. */
export function counter(r: Registry, name: string, help: string, read: () => Reading, labelNames: string[] = []): void {
  if (!name.endsWith('_total')) throw new Error(`counter ${name} must end in _total`);
  new Counter({
    name: METRICS_PREFIX + name,
    help,
    labelNames,
    registers: [r],
    collect() {
      apply(this, read(), 'inc');
    },
  });
}

export function gauge(r: Registry, name: string, help: string, read: () => Reading, labelNames: string[] = []): void {
  new Gauge({
    name: METRICS_PREFIX + name,
    help,
    labelNames,
    registers: [r],
    collect() {
      apply(this, read(), 'set');
    },
  });
}

/** Answer one request for /metrics from `registry`; false when the path is another. */
export async function handleMetrics(registry: Registry, req: http.IncomingMessage, res: http.ServerResponse): Promise<boolean> {
  const path = (req.url ?? '/').split('?')[0];
  if (path !== '/metrics') return false;
  try {
    const body = await registry.metrics();
    res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' });
    res.end(body);
  } catch (e) {
    res.writeHead(500, { 'content-type': 'text/plain' });
    res.end(`${(e as Error).message}\n`);
  }
  return true;
}

export type MetricsServer = Omit<http.Server, 'address'> & { address(): AddressInfo };

/** `--metrics HOST:PORT`: an HTTP server answering /metrics only. */
export async function serveMetrics(at: HostPort, registry: Registry): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    void handleMetrics(registry, req, res).then((done) => {
      if (done) return;
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('spread-pipe: only /metrics here\n');
    });
  });
  await listen(server, at, '--metrics');
  server.unref();
  return server as MetricsServer;
}

export function listen(server: http.Server, at: HostPort, opt: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException): void => {
      reject(new SpreadPipeError(ErrorCodes.LISTEN, `${opt} ${at.host}:${at.port}: cannot listen: ${e.code ?? e.message}`, { cause: e }));
    };
    server.once('error', onError);
    server.listen(at.port, at.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
