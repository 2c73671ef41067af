// A trace session: validates a request into a numeric filter, installs a PacketTracer on the
// datapath, hands formatted packets to the sink and removes the tracer after N packets, on
// timeout, or when stopped. One session at a time per datapath (a second one is a 409).
// startTraceSession installs the tracer before it returns: a caller that acknowledges the start
// after the call (the API's first "started" record) tells its client that traffic sent from
// then on is traced.
import { ApiError, type Pod } from '../../control/types.ts';
import type { Datapath } from '../../dataplane/datapath.ts';
import { parseIPv4 } from '../../wire/ip-text.ts';
import { formatTraces, type TraceFormatOptions } from './format.ts';
import { ANY_FILTER, PacketTracer, type TraceFilter } from './tracer.ts';
import type { TraceRequest, TraceSink } from './types.ts';

export const MAX_TRACE_COUNT = 100000;
const DEFAULT_TRACE_COUNT = 10;
const PROTOS: Record<string, number> = { tcp: 6, udp: 17, icmp: 1 };

function ip(v: string | undefined, what: string): number {
  if (v === undefined || v === '') return -1;
  try {
    return parseIPv4(v);
  } catch {
    throw new ApiError(400, `${what}: invalid IPv4 address "${v}"`);
  }
}

function int(v: string | undefined, what: string, min: number, max: number, dflt: number): number {
  if (v === undefined || v === '') return dflt;
  if (!/^\d+(\.\d+)?$/.test(v) || Number(v) < min || Number(v) > max) throw new ApiError(400, `${what} must be a number from ${min} to ${max}, not "${v}"`);
  return Number(v);
}

/** The request as a filter; `pod` looks a pod up (404 when unknown). */
export function traceFilter(req: TraceRequest, pod: (namespace: string, name: string) => Pod | undefined): { filter: TraceFilter; timeoutMs: number } {
  const f: TraceFilter = { ...ANY_FILTER };
  f.ip = ip(req.ip, 'ip');
  f.srcIp = ip(req.srcIp, 'src-ip');
  f.dstIp = ip(req.dstIp, 'dst-ip');
  f.port = int(req.port, 'port', 1, 65535, -1);
  if (f.port !== -1 && !Number.isInteger(f.port)) throw new ApiError(400, `port must be an integer, not "${req.port}"`);
  if (req.proto !== undefined && req.proto !== '') {
    const p = PROTOS[req.proto.toLowerCase()];
    if (p === undefined) throw new ApiError(400, `proto must be tcp, udp or icmp, not "${req.proto}"`);
    f.proto = p;
  }
  f.count = Math.floor(int(req.count, 'count', 1, MAX_TRACE_COUNT, DEFAULT_TRACE_COUNT));
  const timeoutMs = Math.round(int(req.timeout, 'timeout', 0, 86400, 0) * 1000);
  if (req.pod) {
    const ns = req.namespace || 'default';
    const p = pod(ns, req.pod);
    if (!p) throw new ApiError(404, `pod ${ns}/${req.pod} not found`);
    f.podEp = p.endpointID;
    f.podIp = p.podIP ? parseIPv4(p.podIP) : -1;
  }
  return { filter: f, timeoutMs };
}

/** The first line of a /v1/trace stream: the tracer is installed; every matching packet from now on is traced. */
export interface TraceStartedRecord {
  started: { count: number; timeoutSeconds: number };
}

/** The started record of a request that startTraceSession accepted (so its numbers are valid). */
export function traceStarted(req: TraceRequest): TraceStartedRecord {
  return { started: { count: req.count ? Math.floor(Number(req.count)) : DEFAULT_TRACE_COUNT, timeoutSeconds: req.timeout ? Number(req.timeout) : 0 } };
}

export interface TraceSessionOptions {
  /** 0 = until the count is reached or the session is stopped. */
  timeoutMs: number;
  format?: TraceFormatOptions;
}

/** Starts tracing on `dp` (installed when this returns); returns the function that stops it (idempotent). Throws ApiError(409) when a trace runs. */
export function startTraceSession(dp: Datapath, filter: TraceFilter, sink: TraceSink, opts: TraceSessionOptions): () => void {
  if (dp.tracer !== null) throw new ApiError(409, 'a trace is already running on this node');
  let ended = false;
  let timer: NodeJS.Timeout | undefined;
  const finish = (reason: 'count' | 'timeout' | 'stopped') => {
    if (ended) return;
    if (timer) clearTimeout(timer);
    if (dp.tracer === tracer) dp.setTracer(null);
    if (reason !== 'stopped') tracer.drain(); // packets recorded since the last drain still go out
    ended = true;
    sink.end(reason);
  };
  let delivered = 0;
  const tracer = new PacketTracer(filter, (t) => {
    if (ended) return;
    for (const rec of formatTraces(t.buf, t.n, opts.format)) {
      sink.packet(rec);
      delivered++;
    }
    if (delivered >= filter.count) setImmediate(() => finish('count'));
  });
  dp.setTracer(tracer);
  if (opts.timeoutMs > 0) {
    timer = setTimeout(() => finish('timeout'), opts.timeoutMs);
    timer.unref();
  }
  return () => finish('stopped');
}
