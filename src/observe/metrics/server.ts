// A small HTTP server for /metrics (prometheus-serve-addr, hubble-metrics-server), with content
// negotiation between the Prometheus text format and OpenMetrics.
import { createServer, type Server } from 'node:http';
import { type AnyRegistry, OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE, render, wantsOpenMetrics } from './exposition.ts';

export interface ListenAddress {
  /** undefined: every address of the namespace. */
  host?: string;
  port: number;
}

/** Cilium's address syntax: ":9962" (all addresses), "127.0.0.1:9962", "[::1]:9962"; '' = disabled. */
export function parseListenAddress(addr: string): ListenAddress | undefined {
  const s = addr.trim();
  if (s === '') return undefined;
  const m = /^(?:\[([^\]]*)\]|([^:]*)):(\d{1,5})$/.exec(s);
  if (!m) throw new Error(`invalid listen address "${addr}": expected [host]:port, e.g. ":9962"`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`invalid listen address "${addr}": port out of range`);
  const host = m[1] ?? m[2];
  return { host: host === '' ? undefined : host, port };
}

export class MetricsServer {
  private server?: Server;

  constructor(private readonly registries: () => AnyRegistry[]) {}

  /** Starts listening; resolves with the bound port. */
  listen(addr: ListenAddress): Promise<number> {
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      if (path !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('404 page not found\n');
        return;
      }
      const om = wantsOpenMetrics(req.headers.accept);
      render(this.registries(), om).then(
        (body) => {
          res.writeHead(200, { 'content-type': om ? OPENMETRICS_CONTENT_TYPE : PROMETHEUS_CONTENT_TYPE });
          res.end(req.method === 'HEAD' ? undefined : body);
        },
        (err: Error) => {
          res.writeHead(500, { 'content-type': 'text/plain' }).end(`error gathering metrics: ${err.message}\n`);
        },
      );
    });
    server.keepAliveTimeout = 5000;
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(addr.port, addr.host, () => {
        server.off('error', reject);
        const a = server.address();
        resolve(typeof a === 'object' && a ? a.port : addr.port);
      });
    });
  }

  close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return Promise.resolve();
    return new Promise((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    });
  }
}
