// CoreDNS's stand-in (registry.k8s.io/coredns/coredns): the cluster DNS server inside its pod, on :53
// UDP+TCP, with Prometheus metrics on :9153. Services come from the agent's API on its unix socket
// (CILIARY_AGENT_SOCKET, inherited from the agent), re-read on a miss and every few seconds; pod names
// are answered as CoreDNS's `pods insecure` answers them; other names go to CILIARY_DNS_UPSTREAMS.
import { createServer, request } from 'node:http';
import { ClusterDnsServer } from '../proxy/dns/server.ts';
import { exitOnSignals, flagValue } from './common.ts';

const SVC_NAME = /^([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local$/;
const POD_NAME = /^(\d{1,3})-(\d{1,3})-(\d{1,3})-(\d{1,3})\.([a-z0-9-]+)\.pod\.cluster\.local$/;
const REFRESH_MS = 5000;
/** A miss re-reads the services at most this often, so a flood of bad names costs one request. */
const MISS_REFRESH_MS = 200;

const socket = process.env.CILIARY_AGENT_SOCKET ?? '';
const upstreams = (process.env.CILIARY_DNS_UPSTREAMS ?? '').split(/[\s,]+/).filter((s) => s !== '');
const argv = process.argv.slice(2);
const dnsPort = Number(flagValue(argv, 'dns.port') ?? 53);
let services = new Map<string, string>();
let lastRead = 0;
let reading: Promise<void> | undefined;
/** The ETag of the table we hold: the agent answers 304 while it is current. */
let etag = '';

/** GET /v1/service-addresses from the agent: "name.namespace" → clusterIP. A failed read keeps the last table. */
function readServices(): Promise<void> {
  reading ??= new Promise<void>((resolve) => {
    lastRead = Date.now();
    const req = request({ socketPath: socket, path: '/v1/service-addresses', timeout: 2000, headers: etag ? { 'if-none-match': etag } : {} }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        if (res.statusCode === 304) return resolve();
        try {
          const list = JSON.parse(text) as Array<{ name: string; namespace: string; clusterIP: string }>;
          services = new Map(list.map((s) => [`${s.name}.${s.namespace}`, s.clusterIP]));
          etag = String(res.headers.etag ?? '');
        } catch {
          process.stderr.write(`[WARNING] services from the agent did not parse (${res.statusCode})\n`);
        }
        resolve();
      });
    });
    req.on('timeout', () => req.destroy());
    req.on('error', (err) => {
      process.stderr.write(`[WARNING] reading services from the agent: ${err.message}\n`);
      resolve();
    });
    req.end();
  }).finally(() => (reading = undefined));
  return reading;
}

function resolve(name: string): string[] | undefined {
  const pod = POD_NAME.exec(name);
  if (pod) {
    const octets = pod.slice(1, 5).map(Number);
    return octets.every((o) => o <= 255) ? [octets.join('.')] : undefined;
  }
  const svc = SVC_NAME.exec(name);
  if (!svc) return undefined;
  const ip = services.get(`${svc[1]}.${svc[2]}`);
  return ip ? [ip] : undefined;
}

const server = new ClusterDnsServer({
  resolve,
  refresh: () => (Date.now() - lastRead >= MISS_REFRESH_MS ? readServices() : Promise.resolve()),
  ...(upstreams.length ? { upstreams } : {}),
  // One line per query in the spirit of CoreDNS's log plugin: who asked (the pod, also through the proxy), what, the answer.
  onQuery: (q) => process.stdout.write(`[INFO] ${q.client} - "${q.type} IN ${q.name}. ${q.transport}" ${q.rcode} ${(q.latencyMs / 1000).toFixed(6)}s\n`),
  logger: { debug: () => undefined, warn: (o, msg) => process.stderr.write(`[WARNING] ${msg ?? ''} ${JSON.stringify(o)}\n`) },
});

/** CoreDNS's own metric names, from the server's counters. */
function metrics(): string {
  const s = server.stats;
  const lines = [
    '# HELP coredns_dns_requests_total Counter of DNS requests made per zone, protocol and family.',
    '# TYPE coredns_dns_requests_total counter',
    `coredns_dns_requests_total{server="dns://:${dnsPort}",zone="."} ${s.queries}`,
    '# HELP coredns_dns_responses_total Counter of response status codes.',
    '# TYPE coredns_dns_responses_total counter',
    ...Object.entries(s.responses).map(([rcode, n]) => `coredns_dns_responses_total{rcode="${rcode}",server="dns://:${dnsPort}",zone="."} ${n}`),
    '# HELP coredns_forward_requests_total Counter of requests made per upstream.',
    '# TYPE coredns_forward_requests_total counter',
    `coredns_forward_requests_total ${s.forwarded}`,
  ];
  return lines.join('\n') + '\n';
}

const metricsServer = createServer((req, res) => {
  if (req.url === '/metrics') {
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
    res.end(metrics());
  } else if (req.url === '/health' || req.url === '/ready') res.end('OK');
  else {
    res.writeHead(404);
    res.end();
  }
});

await readServices();
await server.listen('0.0.0.0', dnsPort);
metricsServer.listen(9153);
setInterval(() => void readServices(), REFRESH_MS).unref();
process.stdout.write(`.:${dnsPort}\nCoreDNS-1.12.0 (ciliary)\nlinux/amd64, node ${process.version}\n`);
exitOnSignals(() => void server.close());
