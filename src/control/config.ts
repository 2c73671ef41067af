// Agent configuration: Cilium's key names, from an optional YAML file overridden by flags.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { LineCounter, parseDocument, isMap, isScalar, type Pair } from 'yaml';
import { formatCidr, isIPv4, tryParseCidr } from '../wire/ip-text.ts';

export interface AgentConfig {
  'node-name': string;
  'node-ip': string;
  'state-dir': string;
  'api-socket': string;
  'api-port': number;
  'cluster-api-address': string;
  'cluster-token-file': string;
  config: string;
  'cluster-name': string;
  'cluster-id': number;
  'cluster-pool-ipv4-cidr': string;
  'cluster-pool-ipv4-mask-size': number;
  'ipv4-pod-cidr': string;
  'service-cluster-ip-range': string;
  'routing-mode': 'tunnel' | 'native';
  'tunnel-protocol': 'vxlan';
  'tunnel-port': number;
  'ipv4-native-routing-cidr': string;
  'auto-direct-node-routes': boolean;
  'node-labels': string;
  'enable-ipv4-masquerade': boolean;
  'enable-bpf-masquerade': boolean;
  'enable-ip-masq-agent': boolean;
  'ip-masq-agent-config-path': string;
  devices: string;
  'masquerade-port-range': string;
  'policy-enforcement-mode': 'default' | 'always' | 'never';
  'enable-l7-proxy': boolean;
  'tofqdns-min-ttl': number;
  'resolv-conf': string;
  'enable-host-firewall': boolean;
  'enable-node-selector-labels': boolean;
  'enable-hubble': boolean;
  'hubble-event-buffer-capacity': number;
  'hubble-listen-address': string;
  'hubble-relay-listen-address': string;
  'hubble-relay-peers': string;
  'hubble-ui-listen-address': string;
  'kube-apiserver-listen-address': string;
  'hubble-metrics-server': string;
  'prometheus-serve-addr': string;
  'hubble-export-file-path': string;
  'hubble-redact-enabled': boolean;
  'hubble-metrics': string;
  'hubble-export-file-max-size-mb': number;
  'hubble-export-file-max-backups': number;
  'hubble-export-allowlist': string;
  'hubble-export-denylist': string;
  'hubble-export-fieldmask': string;
  'hubble-redact-http-urlquery': boolean;
  'bpf-lb-algorithm': 'random' | 'maglev';
  'bpf-lb-maglev-table-size': number;
  'bpf-lb-map-max': number;
  'bpf-ct-global-tcp-max': number;
  'bpf-ct-global-any-max': number;
  'bpf-nat-global-max': number;
  'bpf-policy-map-max': number;
  'bpf-ct-timeout-regular-tcp': number;
  'bpf-ct-timeout-regular-tcp-syn': number;
  'bpf-ct-timeout-regular-tcp-fin': number;
  'bpf-ct-timeout-regular-any': number;
  'bpf-ct-timeout-service-tcp': number;
  'bpf-ct-timeout-service-any': number;
  'enable-bandwidth-manager': boolean;
  'enable-l2-announcements': boolean;
  'l2announcements-lease-duration': string;
  'l2announcements-renew-deadline': string;
  'l2announcements-retry-period': string;
  'bpf-bandwidth-horizon': string;
  'pod-eviction-timeout': string;
  kvstore: '' | 'local' | 'etcd';
  'kvstore-opt': Record<string, string>;
  mtu: number;
  'enable-offloads': boolean;
  'enable-tunnel-gso': boolean;
  debug: boolean;
  'log-format': 'json' | 'pretty' | 'auto';
  'monitor-queue-size': number;
}

export type ConfigKey = keyof AgentConfig;

type Kind =
  | { type: 'string' }
  | { type: 'ipv4' } // '' or a dotted quad
  | { type: 'cidr'; optional: boolean } // optional: '' allowed
  | { type: 'number'; min: number; max: number }
  | { type: 'boolean' }
  | { type: 'enum'; values: readonly string[] }
  | { type: 'map' }
  | { type: 'duration' }; // Go's time.Duration text: 2s, 500ms, 1m30s

export interface KeySpec {
  key: ConfigKey;
  kind: Kind;
  /** Static default; derived defaults (node-name, state-dir, api-socket) are filled in by loadConfig. */
  default: unknown;
  help: string;
}

const U32 = 0xffffffff;
const num = (min: number, max: number): Kind => ({ type: 'number', min, max });
const str: Kind = { type: 'string' };
const bool: Kind = { type: 'boolean' };
const oneOf = (...values: string[]): Kind => ({ type: 'enum', values });

/** Every key the agent understands, in the order `--help` prints them. */
export const CONFIG_KEYS: readonly KeySpec[] = [
  { key: 'node-name', kind: str, default: '', help: 'name of this node (default: the hostname)' },
  { key: 'node-ip', kind: { type: 'ipv4' }, default: '', help: "this node's IPv4 address on the node network ('' = detect)" },
  { key: 'state-dir', kind: str, default: '', help: 'directory for maps, kvstore and the API socket (default: /run/ciliary/<node-name>)' },
  { key: 'api-socket', kind: str, default: '', help: 'unix socket of the API (default: <state-dir>/agent.sock)' },
  { key: 'api-port', kind: num(0, 65535), default: 0, help: 'also serve the API on 127.0.0.1:PORT (0 = no TCP)' },
  { key: 'cluster-api-address', kind: str, default: '', help: "also serve the API on the node network to holders of the cluster token: HOST:PORT, or :PORT on node-ip ('' = no)" },
  { key: 'cluster-token-file', kind: str, default: '', help: 'the cluster token for cluster-api-address (0600; made if missing; default: <state-dir>/../cluster-token)' },
  { key: 'config', kind: str, default: '', help: 'YAML file with these keys; flags override it' },
  { key: 'cluster-name', kind: str, default: 'default', help: 'name of the cluster' },
  { key: 'cluster-id', kind: num(0, 255), default: 0, help: 'numeric id of the cluster' },
  { key: 'cluster-pool-ipv4-cidr', kind: { type: 'cidr', optional: false }, default: '172.20.0.0/16', help: 'cluster-pool IPAM: the pod CIDR split between nodes' },
  { key: 'cluster-pool-ipv4-mask-size', kind: num(1, 32), default: 24, help: 'cluster-pool IPAM: prefix length of each node\'s pod CIDR' },
  { key: 'ipv4-pod-cidr', kind: { type: 'cidr', optional: true }, default: '', help: "this node's pod CIDR ('' = allocate from the cluster pool)" },
  { key: 'service-cluster-ip-range', kind: { type: 'cidr', optional: false }, default: '10.96.0.0/16', help: 'ClusterIP range' },
  { key: 'routing-mode', kind: oneOf('tunnel', 'native'), default: 'native', help: 'native (routes between nodes, the labs\' default) or tunnel (VXLAN between nodes)' },
  { key: 'tunnel-protocol', kind: oneOf('vxlan'), default: 'vxlan', help: 'encapsulation in tunnel mode' },
  { key: 'tunnel-port', kind: num(1, 65535), default: 8472, help: 'UDP port of the tunnel' },
  { key: 'ipv4-native-routing-cidr', kind: { type: 'cidr', optional: true }, default: '', help: 'destinations reachable without masquerade in native mode' },
  { key: 'auto-direct-node-routes', kind: bool, default: false, help: "native mode: route the other nodes' pod CIDRs via their node IPs" },
  { key: 'node-labels', kind: str, default: '', help: "this node's labels, key=value comma-separated (e.g. node-role.kubernetes.io/control-plane=)" },
  { key: 'enable-ipv4-masquerade', kind: bool, default: true, help: 'SNAT pod traffic leaving the cluster' },
  { key: 'enable-bpf-masquerade', kind: bool, default: true, help: 'masquerade in the datapath (not iptables)' },
  { key: 'enable-ip-masq-agent', kind: bool, default: false, help: 'use nonMasqueradeCIDRs of the ip-masq-agent config' },
  { key: 'ip-masq-agent-config-path', kind: str, default: '/etc/config/ip-masq-agent', help: 'ip-masq-agent config (YAML or JSON: nonMasqueradeCIDRs, masqLinkLocal), reloaded when it changes' },
  { key: 'devices', kind: str, default: '', help: "native devices for masquerade and NodePort, comma-separated ('' = the device holding node-ip)" },
  { key: 'masquerade-port-range', kind: str, default: '61000-65534', help: 'source ports (and ICMP echo ids) masqueraded flows get, within 32768-65534; kept out of the node\'s ephemeral ports' },
  { key: 'policy-enforcement-mode', kind: oneOf('default', 'always', 'never'), default: 'default', help: 'when endpoints enforce policy' },
  { key: 'enable-l7-proxy', kind: bool, default: true, help: 'enable the L7 HTTP proxy' },
  { key: 'enable-host-firewall', kind: bool, default: false, help: 'enforce host policies (CCNP nodeSelector) on traffic between pods and the node' },
  { key: 'enable-node-selector-labels', kind: bool, default: false, help: 'per-node identities carrying node labels, for fromNodes/toNodes' },
  { key: 'resolv-conf', kind: str, default: '/etc/resolv.conf', help: "the node's resolver file (kubelet's --resolv-conf): the CoreDNS pods forward names outside the cluster to its nameservers" },
  { key: 'tofqdns-min-ttl', kind: num(0, 1 << 30), default: 0, help: "seconds toFQDNs keeps a DNS answer at least (0 = the answer's TTL)" },
  { key: 'enable-hubble', kind: bool, default: true, help: 'record flows' },
  { key: 'hubble-event-buffer-capacity', kind: num(1, 1 << 24), default: 4095, help: 'flows kept in the ring' },
  { key: 'hubble-listen-address', kind: str, default: ':4244', help: "Hubble's gRPC Observer API address, no TLS ('' = off)" },
  { key: 'hubble-relay-listen-address', kind: str, default: '', help: "Hubble Relay address, e.g. ':4245': one Observer over every node's ('' = no relay)" },
  { key: 'hubble-relay-peers', kind: str, default: '', help: "the relay's peers: comma-separated host:port of each node's Observer ('' = this node)" },
  { key: 'kube-apiserver-listen-address', kind: str, default: '', help: "Kubernetes API subset for kubectl, e.g. '192.168.10.100:6443'; kubeconfig in <state-dir>/kube/admin.conf ('' = off)" },
  { key: 'hubble-ui-listen-address', kind: str, default: ':12000', help: "Hubble UI web page (service map, live flows) address ('' = off)" },
  { key: 'hubble-metrics-server', kind: str, default: ':9965', help: 'hubble metrics address' },
  { key: 'prometheus-serve-addr', kind: str, default: ':9962', help: 'agent metrics address' },
  { key: 'hubble-export-file-path', kind: str, default: '', help: "flow log file ('' = none)" },
  { key: 'hubble-redact-enabled', kind: bool, default: false, help: 'redact sensitive flow fields' },
  { key: 'hubble-metrics', kind: str, default: 'dns,drop,tcp,flow,port-distribution,icmp,httpV2', help: "hubble metric handlers, space- or comma-separated, with options: 'httpV2:exemplars=true;labelsContext=source_ip,destination_ip' ('' = none)" },
  { key: 'hubble-export-file-max-size-mb', kind: num(1, 1 << 20), default: 10, help: 'flow log size (MB) that triggers rotation' },
  { key: 'hubble-export-file-max-backups', kind: num(0, 1 << 16), default: 5, help: 'rotated flow logs kept (0 = all)' },
  { key: 'hubble-export-allowlist', kind: str, default: '', help: 'flow log allowlist: JSON flow filters, e.g. {"verdict":["DROPPED"]}' },
  { key: 'hubble-export-denylist', kind: str, default: '', help: 'flow log denylist: JSON flow filters, e.g. {"source_pod":["kube-system/"]}' },
  { key: 'hubble-export-fieldmask', kind: str, default: '', help: "flow fields kept in the flow log, e.g. 'time,verdict,source.pod_name' ('' = all)" },
  { key: 'hubble-redact-http-urlquery', kind: bool, default: false, help: 'with hubble-redact-enabled: remove the query from HTTP URLs' },
  { key: 'bpf-lb-algorithm', kind: oneOf('random', 'maglev'), default: 'random', help: 'backend selection' },
  { key: 'bpf-lb-maglev-table-size', kind: num(251, 131071), default: 16381, help: 'Maglev lookup table size (a prime)' },
  { key: 'bpf-lb-map-max', kind: num(1, U32), default: 65536, help: 'entries of the service maps' },
  { key: 'bpf-ct-global-tcp-max', kind: num(1, U32), default: 524288, help: 'entries of the TCP conntrack map' },
  { key: 'bpf-ct-global-any-max', kind: num(1, U32), default: 262144, help: 'entries of the non-TCP conntrack map' },
  { key: 'bpf-nat-global-max', kind: num(1, U32), default: 524288, help: 'entries of the NAT map' },
  { key: 'bpf-policy-map-max', kind: num(1, U32), default: 16384, help: 'entries of each policy map' },
  { key: 'bpf-ct-timeout-regular-tcp', kind: num(1, U32), default: 21600, help: 'seconds: established TCP' },
  { key: 'bpf-ct-timeout-regular-tcp-syn', kind: num(1, U32), default: 60, help: 'seconds: TCP handshake' },
  { key: 'bpf-ct-timeout-regular-tcp-fin', kind: num(1, U32), default: 10, help: 'seconds: closing TCP' },
  { key: 'bpf-ct-timeout-regular-any', kind: num(1, U32), default: 60, help: 'seconds: non-TCP' },
  { key: 'bpf-ct-timeout-service-tcp', kind: num(1, U32), default: 21600, help: 'seconds: service TCP' },
  { key: 'bpf-ct-timeout-service-any', kind: num(1, U32), default: 60, help: 'seconds: service non-TCP' },
  { key: 'enable-bandwidth-manager', kind: bool, default: false, help: 'enforce kubernetes.io/egress-bandwidth' },
  { key: 'bpf-bandwidth-horizon', kind: { type: 'duration' }, default: '2s', help: 'bandwidth manager: packets due later than this are dropped (EDT horizon)' },
  { key: 'enable-l2-announcements', kind: bool, default: false, help: 'answer ARP for LoadBalancer and external IPs selected by a CiliumL2AnnouncementPolicy, one lease holder per service' },
  { key: 'l2announcements-lease-duration', kind: { type: 'duration' }, default: '15s', help: 'L2 announcements: how long a lease outlives its holder (whole seconds, at least 1s)' },
  { key: 'l2announcements-renew-deadline', kind: { type: 'duration' }, default: '5s', help: 'L2 announcements: a holder that cannot renew for this long stops answering' },
  { key: 'l2announcements-retry-period', kind: { type: 'duration' }, default: '2s', help: 'L2 announcements: how often a candidate retries and a holder checks its lease' },
  { key: 'pod-eviction-timeout', kind: { type: 'duration' }, default: '5m', help: "pods of a node NotReady this long (its agent's lease ran out) are deleted; a Deployment's are recreated on other nodes" },
  { key: 'kvstore', kind: oneOf('', 'local', 'etcd'), default: '', help: "state store: '' or local (a file in state-dir) or etcd" },
  { key: 'kvstore-opt', kind: { type: 'map' }, default: {}, help: 'kvstore options, e.g. etcd.address=http://host:2379' },
  { key: 'mtu', kind: num(68, 65535), default: 1500, help: 'MTU of pod devices' },
  { key: 'enable-offloads', kind: bool, default: true, help: 'TSO/checksum offloads on TUN devices' },
  { key: 'enable-tunnel-gso', kind: bool, default: true, help: 'tunnel mode: TCP super-packets leave whole through cilium_vxlan for the kernel to segment (Linux 6.17+)' },
  { key: 'debug', kind: bool, default: false, help: 'debug logging' },
  { key: 'log-format', kind: oneOf('json', 'pretty', 'auto'), default: 'auto', help: 'json, pretty, or auto (pretty on a terminal)' },
  { key: 'monitor-queue-size', kind: num(1, 1 << 24), default: 65536, help: 'monitor events buffered before dropping' },
];

const SPECS = new Map<string, KeySpec>(CONFIG_KEYS.map((s) => [s.key, s]));

export class ConfigError extends Error {
  constructor(readonly key: string, message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Defaults with the derived paths filled in for the given (or this host's) node name. */
export function defaultConfig(nodeName = hostname()): AgentConfig {
  const cfg = Object.fromEntries(CONFIG_KEYS.map((s) => [s.key, structuredClone(s.default)])) as unknown as AgentConfig;
  return withDerived(cfg, nodeName);
}

/** Empty path keys follow the node name: /run/ciliary/<node-name>/agent.sock. */
function withDerived(cfg: AgentConfig, host: string): AgentConfig {
  cfg['node-name'] ||= host;
  cfg['state-dir'] ||= join('/run/ciliary', cfg['node-name']);
  cfg['api-socket'] ||= join(cfg['state-dir'], 'agent.sock');
  cfg['cluster-token-file'] ||= join(dirname(cfg['state-dir']), 'cluster-token');
  return cfg;
}

/**
 * Loads configuration: defaults < YAML file (`--config PATH`, or env CILIARY_CONFIG) < env
 * CILIARY_<KEY> (e.g. CILIARY_NODE_NAME) < flags. Throws ConfigError naming the offending key.
 */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv = {}): AgentConfig {
  const flags = parseFlags(argv);
  const cfg = Object.fromEntries(CONFIG_KEYS.map((s) => [s.key, structuredClone(s.default)])) as unknown as Record<string, unknown>;
  const file = (flags.get('config') as string | undefined) ?? env.CILIARY_CONFIG;
  if (file) {
    for (const [k, v] of readConfigFile(file)) { cfg[k] = v; }
    cfg.config = file;
  }
  for (const s of CONFIG_KEYS) {
    const name = `CILIARY_${s.key.toUpperCase().replace(/-/g, '_')}`;
    const raw = env[name];
    if (raw !== undefined && s.key !== 'config') { cfg[s.key] = coerce(s, raw, `environment variable ${name}`); }
  }
  for (const [k, v] of flags) { cfg[k] = v; }
  const out = withDerived(cfg as unknown as AgentConfig, hostname());
  checkCrossKeys(out);
  return out;
}

/** `--key=value`, `--key value`, `--flag`, `--flag=false`; values already checked and typed. */
function parseFlags(argv: string[]): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--') || arg === '--') {
      throw new ConfigError(arg, `unexpected argument "${arg}": configuration is given as --key=value`);
    }
    const eq = arg.indexOf('=');
    const key = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    const spec = specOf(key, `flag --${key}`);
    let raw: string;
    if (eq >= 0) raw = arg.slice(eq + 1);
    else if (spec.kind.type === 'boolean') raw = 'true';
    else {
      if (i + 1 >= argv.length) throw new ConfigError(key, `flag --${key} needs a value`);
      raw = argv[++i];
    }
    // A map flag may repeat: --kvstore-opt a=1 --kvstore-opt b=2.
    const value = coerce(spec, raw, `flag --${key}`);
    if (spec.kind.type === 'map' && out.has(key)) Object.assign(out.get(key) as object, value);
    else out.set(key, value);
  }
  return out;
}

function specOf(key: string, where: string): KeySpec {
  const spec = SPECS.get(key);
  if (!spec) {
    const near = closestKey(key);
    throw new ConfigError(key, `unknown configuration key "${key}" (${where})${near ? `; did you mean "${near}"?` : ''}`);
  }
  return spec;
}

/** Reads the YAML file into checked [key, value] pairs; errors name the key and its line. */
function readConfigFile(path: string): Array<[string, unknown]> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError('config', `config: cannot read ${path}: ${(e as Error).message}`);
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true });
  if (doc.errors.length) throw new ConfigError('config', `config: ${path}: ${doc.errors[0].message}`);
  if (doc.contents === null) return [];
  if (!isMap(doc.contents)) throw new ConfigError('config', `config: ${path}: expected a mapping of key: value`);
  const out: Array<[string, unknown]> = [];
  for (const pair of doc.contents.items as Pair[]) {
    const keyNode = pair.key;
    const key = isScalar(keyNode) ? String(keyNode.value) : String(keyNode);
    const offset = isScalar(keyNode) && keyNode.range ? keyNode.range[0] : 0;
    const where = `${path} line ${lines.linePos(offset).line}`;
    const spec = specOf(key, where);
    const value = pair.value === null ? null : (pair.value as { toJSON(): unknown }).toJSON();
    out.push([key, coerce(spec, value, where)]);
  }
  return out;
}

/** A CIDR whose host bits are zero, e.g. 10.96.0.0/16. */
export function cidrProblem(s: string): string | undefined {
  const c = tryParseCidr(s);
  if (!c) return 'is not an IPv4 CIDR such as 10.0.0.0/16';
  if (c.ip !== c.base) return `has host bits set (did you mean ${formatCidr(c)}?)`;
  return undefined;
}

/** Checks one value (from YAML, env or a flag) against its key's kind and returns it typed. */
function coerce(spec: KeySpec, value: unknown, where: string): unknown {
  const key = spec.key;
  const bad = (why: string) => new ConfigError(key, `${key}: ${JSON.stringify(value)} ${why} (${where})`);
  const k = spec.kind;
  switch (k.type) {
    case 'string':
      if (value === null) return '';
      if (typeof value !== 'string' && typeof value !== 'number') throw bad('is not a string');
      return String(value);
    case 'ipv4': {
      const s = value === null ? '' : String(value);
      if (s !== '' && !isIPv4(s)) throw bad('is not an IPv4 address');
      return s;
    }
    case 'cidr': {
      const s = value === null ? '' : String(value);
      if (s === '' && k.optional) return '';
      const p = cidrProblem(s);
      if (p) throw bad(p);
      return s;
    }
    case 'number': {
      const n = typeof value === 'number' ? value : typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
      if (!Number.isInteger(n)) throw bad('is not a whole number');
      if (n < k.min || n > k.max) throw bad(`is out of range ${k.min}..${k.max}`);
      return n;
    }
    case 'boolean':
      if (typeof value === 'boolean') return value;
      if (value === 'true' || value === 'false') return value === 'true';
      throw bad('is not true or false');
    case 'enum': {
      const s = value === null ? '' : String(value);
      if (!k.values.includes(s)) throw bad(`is not one of ${k.values.map((v) => (v === '' ? "''" : v)).join(', ')}`);
      return s;
    }
    case 'duration': {
      const s = value === null ? '' : String(value).trim();
      if (durationMs(s) === undefined) throw bad('is not a duration such as 2s or 500ms');
      return s;
    }
    case 'map': {
      if (value === null) return {};
      if (typeof value === 'string') return parseKeyValues(value, bad);
      if (typeof value !== 'object' || Array.isArray(value)) throw bad('is not a map of key: value');
      const out: Record<string, string> = {};
      for (const [mk, mv] of Object.entries(value as Record<string, unknown>)) {
        if (mv !== null && typeof mv === 'object') throw bad(`has a nested value at "${mk}"`);
        out[mk] = String(mv ?? '');
      }
      return out;
    }
  }
}

const DURATION_UNITS_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60000, h: 3600000 };

/** Go's time.Duration text (`2s`, `1.5ms`, `1m30s`) in milliseconds; undefined when it is not one or not positive. */
export function durationMs(s: string): number | undefined {
  if (!/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(s)) return undefined;
  let ms = 0;
  for (const [, n, , unit] of s.matchAll(/(\d+(\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) ms += Number(n) * DURATION_UNITS_MS[unit];
  return ms > 0 ? ms : undefined;
}

/** `a=1,b=2` → {a:'1', b:'2'} (how Cilium's map flags are written). */
function parseKeyValues(s: string, bad: (why: string) => Error): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of s.split(',').map((p) => p.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw bad(`is not a list of key=value ("${part}")`);
    out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
}

/** `61000-65535` → [min, max]; undefined when it is not a range of ports 1..65535. */
export function parsePortRange(s: string): [number, number] | undefined {
  const m = /^\s*(\d+)\s*-\s*(\d+)\s*$/.exec(s);
  if (!m) return undefined;
  const lo = Number(m[1]);
  const hi = Number(m[2]);
  return lo >= 1 && hi <= 65535 && lo <= hi ? [lo, hi] : undefined;
}

function checkCrossKeys(cfg: AgentConfig): void {
  const natPorts = parsePortRange(cfg['masquerade-port-range']);
  // Above the NodePort range; 65535 cannot be steered (iproute2 refuses it in an `ip rule` dport).
  if (!natPorts || natPorts[0] <= 32767 || natPorts[1] > 65534) {
    throw new ConfigError('masquerade-port-range', `masquerade-port-range: "${cfg['masquerade-port-range']}" is not a port range MIN-MAX within 32768-65534`);
  }
  const poolBits = Number(cfg['cluster-pool-ipv4-cidr'].split('/')[1]);
  if (cfg['cluster-pool-ipv4-mask-size'] < poolBits) {
    throw new ConfigError('cluster-pool-ipv4-mask-size', `cluster-pool-ipv4-mask-size: ${cfg['cluster-pool-ipv4-mask-size']} is shorter than the pool's prefix /${poolBits} (cluster-pool-ipv4-cidr ${cfg['cluster-pool-ipv4-cidr']})`);
  }
  if (cfg.kvstore === 'etcd' && !cfg['kvstore-opt']['etcd.address'] && !cfg['kvstore-opt']['etcd.config']) {
    throw new ConfigError('kvstore-opt', 'kvstore-opt: kvstore etcd needs etcd.address (e.g. --kvstore-opt etcd.address=http://127.0.0.1:2379)');
  }
}

/** The known key nearest to a misspelt one (edit distance), for "did you mean". */
export function closestKey(key: string): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const s of CONFIG_KEYS) {
    const d = editDistance(key, s.key) - (s.key.includes(key) || key.includes(s.key) ? 2 : 0);
    if (d < bestD) { bestD = d; best = s.key; }
  }
  return bestD <= Math.max(3, Math.floor(key.length / 2)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

/** `ciliary-agent --help` text, generated from CONFIG_KEYS. */
export function configUsage(): string {
  const width = Math.max(...CONFIG_KEYS.map((s) => s.key.length)) + 4;
  const lines = CONFIG_KEYS.map((s) => {
    const d = s.default;
    const shown = typeof d === 'string' ? (d ? ` (default ${d})` : '') : typeof d === 'object' ? '' : ` (default ${String(d)})`;
    return `  --${s.key.padEnd(width)}${s.help}${shown}`;
  });
  return ['Usage: ciliary-agent [--config FILE] [--key=value ...]', '', 'Keys (also accepted in the YAML file):', ...lines].join('\n');
}
