/**
 * `top --http HOST:PORT`: the live view as a web page. One HTTP server:
 *   /              the page (src/top/page.ts)
 *   /events        Server-Sent Events: `history` once, then `snapshot` per interval
 *   /snapshot.json the latest snapshot
 *   /metrics       Prometheus text format
 *   /uplot.js, /uplot.css  the chart library, from inside the program
 * SSE rather than WebSocket: one-way, plain HTTP, reconnects by itself in
 * every browser, and no dependency.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { type HostPort, handleMetrics, listen } from '../metrics.js';
import type { History, Snapshot } from './aggregate.js';
import { webAsset } from './assets.js';
import { PAGE } from './page.js';

/** Clients of /events at once; more get 503 (each holds a socket and a write buffer). @default 64 */
export const DEFAULT_MAX_EVENT_CLIENTS = 64;

export class TopHttp {
  private readonly clients = new Set<http.ServerResponse>();
  private last: Snapshot | undefined;

  private constructor(
    readonly server: http.Server,
    private readonly history: () => History,
    private readonly registry: Registry,
  ) {}

  static async start(at: HostPort, history: () => History, registry: Registry): Promise<TopHttp> {
    const server = http.createServer();
    const t = new TopHttp(server, history, registry);
    server.on('request', (req, res) => t.onRequest(req, res));
    await listen(server, at, '--http');
    return t;
  }

  get address(): AddressInfo {
    return this.server.address() as AddressInfo;
  }

  /** Send one interval's snapshot to every page. */
  publish(s: Snapshot): void {
    this.last = s;
    const data = `event: snapshot\ndata: ${JSON.stringify(s)}\n\n`;
    for (const res of this.clients) {
      // A page that stopped reading is dropped rather than buffered without bound.
      if (res.writableLength > 4 * 1024 * 1024) res.destroy();
      else res.write(data);
    }
  }

  async close(): Promise<void> {
    for (const res of this.clients) res.end();
    this.clients.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    void handleMetrics(this.registry, req, res).then((done) => {
      if (!done) this.route(req, res);
    });
  }

  private route(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    const send = (type: string, body: string): void => {
      res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' });
      res.end();
      return;
    }
    switch (path) {
      case '/':
        return send('text/html; charset=utf-8', PAGE);
      case '/uplot.js':
        return send('text/javascript; charset=utf-8', webAsset('uplot/uPlot.iife.min.js'));
      case '/uplot.css':
        return send('text/css; charset=utf-8', webAsset('uplot/uPlot.min.css'));
      case '/snapshot.json':
        return send('application/json', JSON.stringify(this.last ?? null));
      case '/events': {
        if (this.clients.size >= DEFAULT_MAX_EVENT_CLIENTS) {
          res.writeHead(503, { 'retry-after': '5' });
          res.end();
          return;
        }
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
        res.write(`retry: 1000\nevent: history\ndata: ${JSON.stringify(this.history())}\n\n`);
        if (this.last) res.write(`event: snapshot\ndata: ${JSON.stringify(this.last)}\n\n`);
        this.clients.add(res);
        const drop = (): void => {
          this.clients.delete(res);
        };
        res.on('close', drop);
        res.on('error', drop);
        return;
      }
      default:
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found\n');
    }
  }
}
