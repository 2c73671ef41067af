// A Hubble flow (observer.Flow), with the field names `hubble observe -o json` prints. Built from
// monitor events enriched with endpoint metadata; consumed by observe, metrics, export and the web page.

export type Verdict = 'FORWARDED' | 'DROPPED' | 'TRACED' | 'TRANSLATED' | 'AUDIT' | 'ERROR' | 'REDIRECTED';

export interface FlowEndpoint {
  ID?: number;
  identity: number;
  namespace?: string;
  labels: string[];
  pod_name?: string;
  workloads?: Array<{ name: string; kind: string }>;
}

export interface FlowL4 {
  TCP?: { source_port: number; destination_port: number; flags?: Record<string, boolean> };
  UDP?: { source_port: number; destination_port: number };
  ICMPv4?: { type: number; code: number };
}

export interface FlowHttp {
  code?: number;
  method: string;
  url: string;
  protocol: string;
  headers?: Array<{ key: string; value: string }>;
}

/** flow.proto's DNS message. */
export interface FlowDns {
  query: string;
  ips?: string[];
  ttl?: number;
  cnames?: string[];
  observation_source?: string;
  rcode?: number;
  qtypes?: string[];
  rrtypes?: string[];
}

export interface Flow {
  time: string; // RFC 3339 with nanoseconds
  uuid: string;
  verdict: Verdict;
  drop_reason?: number;
  drop_reason_desc?: string;
  IP?: { source: string; destination: string; ipVersion: 'IPv4' };
  l4?: FlowL4;
  source: FlowEndpoint;
  destination: FlowEndpoint;
  Type: 'L3_L4' | 'L7' | 'SOCK';
  node_name: string;
  event_type: { type: number; sub_type?: number };
  traffic_direction?: 'INGRESS' | 'EGRESS' | 'TRAFFIC_DIRECTION_UNKNOWN';
  trace_observation_point?: string; // TO_ENDPOINT, TO_STACK, TO_HOST, TO_PROXY, TO_NETWORK, FROM_ENDPOINT, ...
  is_reply?: boolean;
  Summary: string;
  l7?: { type: 'REQUEST' | 'RESPONSE'; latency_ns?: string; http?: FlowHttp; dns?: FlowDns };
  policy_match_type?: number;
  sock_xlate_point?: string; // SOCK_XLATE_POINT_PRE_DIRECTION_FWD, ..._POST_DIRECTION_FWD, ..._PRE_DIRECTION_REV
  destination_service?: { name: string; namespace: string };
  source_names?: string[];
  destination_names?: string[];
}

/** What consumers (metrics, export, the web page) need from Hubble's flow ring. */
export interface FlowSource {
  /** The newest flows held now, oldest first (at most `n`). */
  recent(n: number): Flow[];
  /** Every new flow; returns an unsubscribe function. */
  onFlow(cb: (f: Flow) => void): () => void;
}
