// `ciliary status [--verbose]` in the shape of `cilium status`.
import type { AgentStatus } from '../control/types.ts';
import { checkFlags, count, str, type ParsedArgs } from './args.ts';
import type { AgentClient } from './client.ts';
import { UsageError } from './errors.ts';
import type { Out } from './pods.ts';
import { formatKeyValues } from './table.ts';
import { tryParseCidr } from '../wire/ip-text.ts';

const WIDTH = 24; // "KubeProxyReplacement:" + 3, as cilium's tabwriter lays it out
const SP = '   ';

/** Usable addresses of an IPv4 CIDR (network and broadcast excluded): /24 → 254. */
export function cidrCapacity(cidr: string): number {
  const bits = tryParseCidr(cidr)?.bits;
  if (bits === undefined) return 0;
  return bits >= 31 ? 2 ** (32 - bits) : 2 ** (32 - bits) - 2;
}

type Config = Record<string, unknown>;
const on = (c: Config, key: string, dflt: boolean) => (typeof c[key] === 'boolean' ? (c[key] as boolean) : dflt);
const val = (c: Config, key: string, dflt: string) => (c[key] === undefined || c[key] === '' ? dflt : String(c[key]));

/** Pure: status + effective config → the lines `cilium status` would print. */
export function formatStatus(s: AgentStatus, cfg: Config, verbose = false): string {
  const tunnel = s.routingMode === 'tunnel';
  const lines: Array<[string, string]> = [
    ['KVStore:', s.kvstore.replace(/^Ok /, `Ok${SP}`)],
    ['Kubernetes:', 'Disabled'],
    ['KubeProxyReplacement:', `True${s.nodeIP ? `${SP}[${s.nodeIP} (Direct Routing)]` : ''}`],
    ['Host firewall:', 'Disabled'],
    ['SRv6:', 'Disabled'],
    ['CNI Chaining:', 'none'],
    ['Cilium:', `Ok${SP}${s.version} (ciliary)`],
    ['NodeMonitor:', 'Listening for events on 2 CPUs with 64x4096 of shared memory'],
    ['IPAM:', `IPv4: ${s.ipam.allocated.length}/${cidrCapacity(s.ipam.cidr)} allocated from ${s.ipam.cidr}`],
  ];
  if (verbose) {
    lines.push(['Allocated addresses:', '']);
    for (const a of s.ipam.allocated) lines.push([`  ${a.ip} (${a.owner})`, '']);
  }
  const masqCidr = val(cfg, 'ipv4-native-routing-cidr', val(cfg, 'cluster-pool-ipv4-cidr', s.ipam.cidr));
  const masq = on(cfg, 'enable-ipv4-masquerade', true)
    ? `${on(cfg, 'enable-bpf-masquerade', true) ? 'BPF' : 'IPTables'}${SP}${masqCidr} [IPv4: Enabled, IPv6: Disabled]`
    : 'Disabled';
  lines.push(
    ['IPv4 BIG TCP:', 'Disabled'],
    ['IPv6 BIG TCP:', 'Disabled'],
    ['BandwidthManager:', s.bandwidthManager?.status ?? 'Disabled'],
    ['Routing:', `Network: ${tunnel ? `Tunnel [${val(cfg, 'tunnel-protocol', 'vxlan')}]` : 'Native'}${SP}Host: BPF`],
    ['Attach Mode:', 'TUN'],
    ['Device Mode:', 'tun'],
    ['Masquerading:', masq],
    ['Controller Status:', `${s.controllers.total - s.controllers.failing}/${s.controllers.total} healthy`],
    ['Proxy Status:', on(cfg, 'enable-l7-proxy', true) ? `OK, ip ${s.routerIP}, ${s.proxyRedirects ?? 0} redirects active on ports 10000-20000` : 'Disabled'],
    ['Global Identity Range:', 'min 256, max 65535'],
    ['Hubble:', on(cfg, 'enable-hubble', true) ? 'Ok' : 'Disabled'],
    ['Encryption:', 'Disabled'],
    ['Cluster health:', 'Probe disabled'],
  );
  let out = formatKeyValues(lines, WIDTH);
  if (verbose) out += kubeProxyDetails(cfg) + datapathLine(s);
  return out;
}

function kubeProxyDetails(cfg: Config): string {
  const algo = val(cfg, 'bpf-lb-algorithm', 'random');
  return 'KubeProxyReplacement Details:\n' + formatKeyValues([
    ['  Status:', 'True'],
    ['  Socket LB:', 'Disabled'],
    ['  Protocols:', 'TCP, UDP'],
    ['  Mode:', 'SNAT'],
    ['  Backend Selection:', algo === 'maglev' ? `Maglev (Table Size: ${val(cfg, 'bpf-lb-maglev-table-size', '16381')})` : 'Random'],
    ['  Session Affinity:', 'Enabled'],
    ['  Graceful Termination:', 'Enabled'],
    ['  NAT46/64 Support:', 'Disabled'],
    ['  Services:', ''],
  ], 26) + formatKeyValues([
    ['  - ClusterIP:', 'Enabled'],
    ['  - NodePort:', 'Enabled (Range: 30000-32767)'],
    ['  - LoadBalancer:', 'Enabled'],
    ['  - externalIPs:', 'Enabled'],
    ['  - HostPort:', 'Disabled'],
  ], 20);
}

/** ciliary's own line: what the userspace datapath has moved (there is no kernel counter to ask). */
function datapathLine(s: AgentStatus): string {
  const d = s.datapath;
  return formatKeyValues([
    ['Endpoints:', `${s.endpoints.ready}/${s.endpoints.total} ready`],
    ...(s.bandwidthManager?.endpoints ? [edtLine(s.bandwidthManager)] : []),
    ['Datapath:', `${d.devices} devices, rx ${d.rxPackets} packets (${d.rxBytes} bytes), tx ${d.txPackets} packets (${d.txBytes} bytes), ${d.forwards} forwarded, ${d.drops} dropped`],
  ], WIDTH);
}

/** The bandwidth manager's queues: packets held for their departure time, and the pool memory they pin. */
function edtLine(b: NonNullable<AgentStatus['bandwidthManager']>): [string, string] {
  return ['EDT queues:', `${b.queuedPackets}/${b.capacityPackets} packets held (${Math.round(b.queuedBytes / 1024)} KiB) for ${b.endpoints} rate-limited endpoints`];
}

export async function statusCommand(args: ParsedArgs, client: AgentClient, io: Out): Promise<number> {
  checkFlags(args, 'status', ['verbose', 'output']);
  if (args.positionals.length) throw new UsageError(`unexpected argument "${args.positionals[0]}"`);
  const [status, cfg] = await Promise.all([client.get<AgentStatus>('/v1/status'), client.get<Config>('/v1/config')]);
  const output = str(args, 'output');
  if (output === 'json') io.out(JSON.stringify(status, null, 2) + '\n');
  else if (output !== undefined) throw new UsageError(`--output must be json, not "${output}"`);
  else io.out(formatStatus(status, cfg, count(args, 'verbose') > 0));
  return 0;
}
