// The policy model every accepted kind (CNP, CCNP, KNP) is translated into, and what resolution yields.
import type { EndpointSelector } from './selector.ts';
import { RESERVED_IDENTITIES } from '../dataplane/vocab/reserved-identities.ts';

export type PolicyKind = 'CiliumNetworkPolicy' | 'CiliumClusterwideNetworkPolicy' | 'NetworkPolicy';
export type Protocol = 'TCP' | 'UDP' | 'SCTP' | 'ANY';

/** Reserved identities, numbered as Cilium numbers them. */
export { RESERVED_IDENTITIES };
export type ReservedEntity = keyof typeof RESERVED_IDENTITIES;
export type Entity = ReservedEntity | 'cluster' | 'all';
export const ENTITIES: readonly string[] = [...Object.keys(RESERVED_IDENTITIES), 'cluster', 'all', 'world-ipv4'];

export interface HttpHeaderMatch {
  name: string;
  value?: string;
  mismatch?: 'LOG' | 'ADD' | 'DELETE' | 'REPLACE';
}

/** One allowed HTTP request shape; method, path and host are regular expressions; `{}` allows all. */
export interface HttpRule {
  method?: string;
  path?: string;
  host?: string;
  headers?: string[];
  headerMatches?: HttpHeaderMatch[];
}

export interface DnsRule {
  matchName?: string;
  matchPattern?: string;
}

export type Peer =
  | { kind: 'endpoints'; selector: EndpointSelector }
  | { kind: 'entity'; entity: Entity }
  | { kind: 'cidr'; cidr: string; except: string[] }
  /** toFQDNs: the canonical matchName/matchPattern text (src/fqdn/pattern.ts selectorText). */
  | { kind: 'fqdn'; text: string }
  /** toServices: one service by name, or the services whose labels match (namespace undefined = any). */
  | { kind: 'service'; namespace?: string; name?: string; selector?: EndpointSelector }
  /** fromNodes/toNodes: node identities (host, remote-node) by node labels. */
  | { kind: 'nodes'; selector: EndpointSelector };

/** A port (0 = all), a named port, or a range port..endPort. */
export interface PortSpec {
  port: number;
  name?: string;
  endPort?: number;
  protocol: Protocol;
}

export interface PortRule {
  ports: PortSpec[];
  http?: HttpRule[];
  dns?: DnsRule[];
}

export interface IcmpField {
  family: 'IPv4' | 'IPv6';
  type: number;
}

/** One element of ingress/egress/ingressDeny/egressDeny. */
export interface PeerRule {
  /** undefined: no L3 field was given (then toPorts/icmps alone apply to all peers); [] selects nothing. */
  peers?: Peer[];
  toPorts: PortRule[];
  icmps: IcmpField[];
}

export interface Rule {
  /** Which endpoints the rule applies to, already scoped to the policy's namespace. */
  subject: EndpointSelector;
  ingress?: PeerRule[];
  egress?: PeerRule[];
  ingressDeny?: PeerRule[];
  egressDeny?: PeerRule[];
  enableDefaultDeny: { ingress?: boolean; egress?: boolean };
  description?: string;
  /** derived-from / name / namespace labels plus the rule's own labels. */
  labels: string[];
}

export interface PolicyRules {
  kind: PolicyKind;
  /** undefined for CiliumClusterwideNetworkPolicy. */
  namespace?: string;
  name: string;
  rules: Rule[];
  /** The object as given, for `policy get`. */
  original: unknown;
  warnings: string[];
}

export interface PolicyEntry {
  /** Peer identity; 0 = any. */
  identity: number;
  egress: boolean;
  /** 0 any, 1 ICMP (port = ICMP type), 6 TCP, 17 UDP, 58 ICMPv6, 132 SCTP. */
  protocol: number;
  /** Destination port, or ICMP type; 0 with portPrefixLen 0 = all. */
  port: number;
  /** 16 = exact port, 0 = any port; ranges are split into prefix-aligned blocks. */
  portPrefixLen: number;
  deny: boolean;
  /** 0, or 1 = "needs the L7 proxy" (the datapath replaces it by the real redirect port). */
  proxyPort: number;
  /** HTTP rules the proxy enforces for this entry (with proxyPort ≠ 0 and no dns). */
  l7?: HttpRule[];
  /** DNS rules the DNS proxy enforces for this entry (with proxyPort ≠ 0). */
  dns?: DnsRule[];
  ruleLabels: string[];
}

export interface ResolvedPolicy {
  ingressEnforced: boolean;
  egressEnforced: boolean;
  entries: PolicyEntry[];
  revision: number;
  /** Every CIDR (and except prefix) the caller's ipcache needs, normalised. */
  cidrs: string[];
  warnings: string[];
}

export interface EndpointInfo {
  id: number;
  identity: number;
  labels: string[];
  namedPorts?: Record<string, { port: number; protocol: string }>;
}

export interface ResolveContext {
  /** Every known identity → labels (reserved ones 1..8 are known even when absent). */
  identities: Map<number, string[]>;
  enforcement: 'default' | 'always' | 'never';
  /** Allocates (or finds) the node-local identity of a CIDR. */
  cidrIdentity: (cidr: string) => number;
  /** Named ports of a peer identity, for egress rules that name a port. */
  namedPortsOf?: (identity: number) => Record<string, { port: number; protocol: string }> | undefined;
  /** Cilium's allow-localhost: when ingress is enforced, still allow everything from the host. */
  allowLocalhost?: boolean;
}
