// Hubble's Observer API from the upstream protos (proto/): the service definition for servers, a client
// constructor, and the decoded message shapes (field names as in the .proto, enums as names, 64-bit
// integers as decimal strings), as @grpc/proto-loader hands them over.
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { loadSync, type ServiceDefinition } from '@grpc/proto-loader';

const PROTO_DIR = fileURLToPath(new URL('./proto/', import.meta.url));

const definition = loadSync('observer/observer.proto', {
  includeDirs: [PROTO_DIR], keepCase: true, longs: String, enums: String, defaults: false, oneofs: true,
});

/** observer.Observer, for grpc.Server.addService. */
export const observerService = definition['observer.Observer'] as ServiceDefinition;

/** The grpc service name `hubble status` health-checks (v1.ObserverServiceName). */
export const OBSERVER_SERVICE_NAME = 'observer.Observer';

type ClientCtor = new (address: string, creds: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => ObserverClient;
const loaded = grpc.loadPackageDefinition(definition) as unknown as { observer: { Observer: ClientCtor } };

/** A client of observer.Observer without TLS (hubble.tls.enabled=false). */
export function observerClient(address: string, options: grpc.ChannelOptions = {}): ObserverClient {
  return new loaded.observer.Observer(address, grpc.credentials.createInsecure(), options);
}

type Unary<Req, Res> = (req: Req, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Res) => void) => grpc.ClientUnaryCall;

export interface ObserverClient extends grpc.Client {
  GetFlows(req: GetFlowsRequest, opts?: grpc.CallOptions): grpc.ClientReadableStream<GetFlowsResponse>;
  ServerStatus: Unary<Record<string, never>, ServerStatusResponse>;
  GetNodes: Unary<Record<string, never>, GetNodesResponse>;
  GetNamespaces: Unary<Record<string, never>, GetNamespacesResponse>;
}

// ---- messages (the fields ciliary reads or fills) -----------------------------------------------

/** uint64 and int64: decimal strings when decoded; numbers or strings when encoded. */
export type Long = string | number;

export interface Timestamp { seconds?: Long; nanos?: number }

export interface FlowFilterMessage {
  [field: string]: unknown;
  experimental?: { cel_expression?: string[] };
}

export interface GetFlowsRequest {
  number?: Long;
  first?: boolean;
  follow?: boolean;
  blacklist?: FlowFilterMessage[];
  whitelist?: FlowFilterMessage[];
  since?: Timestamp;
  until?: Timestamp;
  field_mask?: { paths?: string[] };
}

export interface EndpointMessage {
  ID?: number;
  identity?: number;
  cluster_name?: string;
  namespace?: string;
  labels?: string[];
  pod_name?: string;
  workloads?: Array<{ name?: string; kind?: string }>;
}

export interface FlowMessage {
  time?: Timestamp;
  uuid?: string;
  verdict?: string;
  drop_reason?: number;
  drop_reason_desc?: string;
  IP?: { source?: string; destination?: string; ipVersion?: string };
  l4?: {
    TCP?: { source_port?: number; destination_port?: number; flags?: Record<string, boolean> };
    UDP?: { source_port?: number; destination_port?: number };
    ICMPv4?: { type?: number; code?: number };
  };
  source?: EndpointMessage;
  destination?: EndpointMessage;
  Type?: string;
  node_name?: string;
  source_names?: string[];
  destination_names?: string[];
  l7?: {
    type?: string;
    latency_ns?: Long;
    dns?: { query?: string; ips?: string[]; rcode?: number; qtypes?: string[] };
    http?: { code?: number; method?: string; url?: string; protocol?: string; headers?: Array<{ key?: string; value?: string }> };
  };
  reply?: boolean;
  event_type?: { type?: number; sub_type?: number };
  destination_service?: { name?: string; namespace?: string };
  traffic_direction?: string;
  policy_match_type?: number;
  trace_observation_point?: string;
  is_reply?: { value?: boolean };
  sock_xlate_point?: string;
  Summary?: string;
}

export interface LostEventMessage { source?: string; num_events_lost?: Long }
export interface NodeStatusEventMessage { state_change?: string; node_names?: string[]; message?: string }

export interface GetFlowsResponse {
  flow?: FlowMessage;
  node_status?: NodeStatusEventMessage;
  lost_events?: LostEventMessage;
  response_types?: 'flow' | 'node_status' | 'lost_events';
  node_name?: string;
  time?: Timestamp;
}

export interface ServerStatusResponse {
  num_flows?: Long;
  max_flows?: Long;
  seen_flows?: Long;
  uptime_ns?: Long;
  num_connected_nodes?: { value?: number };
  num_unavailable_nodes?: { value?: number };
  unavailable_nodes?: string[];
  version?: string;
  flows_rate?: number;
}

export interface NodeMessage {
  name?: string;
  version?: string;
  address?: string;
  state?: string;
  tls?: { enabled?: boolean; server_name?: string };
  uptime_ns?: Long;
  num_flows?: Long;
  max_flows?: Long;
  seen_flows?: Long;
}

export interface GetNodesResponse { nodes?: NodeMessage[] }
export interface GetNamespacesResponse { namespaces?: Array<{ cluster?: string; namespace?: string }> }

// ---- timestamps ---------------------------------------------------------------------------------

/** RFC 3339 with up to nanoseconds → google.protobuf.Timestamp. */
export function timestampOf(rfc3339: string): Timestamp {
  const m = /^(.*?)(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})$/.exec(rfc3339);
  const ms = Date.parse(m ? m[1] + m[3] : rfc3339);
  if (Number.isNaN(ms)) return {};
  const nanos = m?.[2] ? Number(m[2].slice(0, 9).padEnd(9, '0')) : 0;
  return { seconds: Math.floor(ms / 1000), nanos };
}

/** A Timestamp as nanoseconds since the epoch (0 when absent), for ordering. */
export function timestampNanos(t: Timestamp | undefined): bigint {
  if (!t) return 0n;
  return BigInt(t.seconds ?? 0) * 1_000_000_000n + BigInt(t.nanos ?? 0);
}

/** A Timestamp as epoch milliseconds; undefined when absent. */
export function timestampMillis(t: Timestamp | undefined): number | undefined {
  if (!t || (t.seconds === undefined && t.nanos === undefined)) return undefined;
  return Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6);
}
