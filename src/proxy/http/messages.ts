// What the datapath thread and the HTTP proxy worker say to each other. The maps stay with the
// datapath thread (their only writer): the worker asks it, once per connection, where a client was
// going and which upstream port speaks for it; flow records come back in batches.
import type { HttpRule } from '../../policy/types.ts';

export interface L7Event {
  type: 'request' | 'response';
  verdict: 'Forwarded' | 'Denied' | 'Error';
  method: string;
  url: string;
  protocol: string;
  status?: number;
  latencyMs?: number;
  client: { ip: string; port: number };
  server: { ip: string; port: number };
  /** The endpoint whose policy redirected the connection. */
  endpoint: number;
  proxyPort: number;
  /**
   * As Envoy logs them: a request's headers as forwarded (no Host, no X-Forwarded-Proto), a response's
   * headers with the request's X-Request-Id; keys in Go's canonical form, sorted.
   */
  headers?: Array<{ key: string; value: string }>;
}

/** Where a redirected client connection was going, with the upstream port registered for it. */
export interface Downstream {
  server: string;
  serverPort: number;
  endpoint: number;
  /** 0 when the map refused (the first upstream connection then asks again). */
  upstreamPort: number;
}

export type ToWorker =
  | { t: 'open'; port: number; routerIP: string; rules: HttpRule[] }
  | { t: 'rules'; port: number; rules: HttpRule[] }
  | { t: 'close'; port: number }
  | { t: 'accepted'; id: number; downstream?: Downstream }
  | { t: 'upstream'; id: number; port: number };

export type FromWorker =
  | { t: 'listening'; port: number; error?: string }
  | { t: 'accept'; id: number; client: string; clientPort: number }
  | { t: 'upstream'; id: number; client: string; clientPort: number }
  | { t: 'release'; ports: number[] }
  | { t: 'events'; events: L7Event[] }
  | { t: 'log'; level: 'warn' | 'debug'; msg: string; fields: Record<string, unknown> };
