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

const enabled = (on: boolean) => (on ? 'Enabled' : 'Disabled');

/** Pure: status → the lines `cilium status` would print, each from what the datapath really does. */
export function formatStatus(s: AgentStatus, verbose = false): string {
  const f = s.features;
  const lines: Array<[string, string]> = [
    ['KVStore:', s.kvstore.ok ? `Ok${SP}${s.kvstore.message}` : `Failure${SP}Err: ${s.kvstore.message}`],
    ['Kubernetes:', 'Disabled'],
    ['KubeProxyReplacement:', `True${s.nodeIP ? `${SP}[${directRouting(s)}]` : ''}`],
    ['Host firewall:', f.hostFirewall ? `Enabled${SP}[cilium_host]` : 'Disabled'],
    ['SRv6:', 'Disabled'],
    ['CNI Chaining:', 'none'],
    ['Cilium:', `Ok${SP}${s.version} (ciliary)`],
    ['NodeMonitor:', `Listening for events on ${f.monitor.cpus} CPUs with a ring of ${f.monitor.ringEvents} events`],
    ['IPAM:', `IPv4: ${s.ipam.allocated.length}/${cidrCapacity(s.ipam.cidr)} allocated from ${s.ipam.cidr}`],
  ];
  if (verbose) {
    lines.push(['Allocated addresses:', '']);
    for (const a of s.ipam.allocated) lines.push([`  ${a.ip} (${a.owner})`, '']);
  }
  lines.push(
    ['IPv4 BIG TCP:', 'Disabled'],
    ['IPv6 BIG TCP:', 'Disabled'],
    ['BandwidthManager:', f.bandwidthManager ?? 'Disabled'],
    ['Routing:', `Network: ${f.routing === 'tunnel' ? `Tunnel [${f.tunnelProtocol ?? 'vxlan'}]` : 'Native'}${f.routingNote ? ` (${f.routingNote})` : ''}${SP}Host: BPF`],
    ['Attach Mode:', 'TUN'],
    ['Device Mode:', 'tun'],
    ['Masquerading:', f.masquerade ? `${f.masquerade.mode}${f.masquerade.devices.length ? `${SP}[${f.masquerade.devices.join(', ')}]${SP}${f.masquerade.cidr}` : ''} [IPv4: Enabled, IPv6: Disabled]` : 'Disabled'],
    ['Controller Status:', `${s.controllers.total - s.controllers.failing}/${s.controllers.total} healthy`],
    ['Proxy Status:', f.proxy ? `OK, ip ${s.routerIP}, ${f.proxy.redirects} redirects active on ports ${f.proxy.ports}` : 'Disabled'],
    ['Global Identity Range:', 'min 256, max 65535'],
    ['Hubble:', f.hubble ? 'Ok' : 'Disabled'],
    ['Encryption:', 'Disabled'],
    ['Cluster health:', 'Probe disabled'],
  );
  let out = formatKeyValues(lines, WIDTH);
  if (verbose) out += kubeProxyDetails(s) + datapathLine(s);
  return out;
}

/** `eth1   192.168.10.101 (Direct Routing)`: the native device (when known) and the node address. */
const directRouting = (s: AgentStatus) => `${s.features.nativeDevice ? `${s.features.nativeDevice}${SP}` : ''}${s.nodeIP} (Direct Routing)`;

function kubeProxyDetails(s: AgentStatus): string {
  const f = s.features;
  const b = f.backendSelection;
  const svc = f.services;
  return 'KubeProxyReplacement Details:\n' + formatKeyValues([
    ['  Status:', 'True'],
    ['  Socket LB:', 'Disabled'],
    ['  Protocols:', 'TCP, UDP'],
    ...(s.nodeIP ? [['  Devices:', directRouting(s)] as [string, string]] : []),
    ['  Mode:', 'SNAT'],
    ['  Backend Selection:', b.algorithm === 'maglev' ? `Maglev (Table Size: ${b.maglevTableSize})` : 'Random'],
    ['  Session Affinity:', 'Enabled'],
    ['  Graceful Termination:', 'Enabled'],
    ['  NAT46/64 Support:', 'Disabled'],
    ['  XDP Acceleration:', 'Disabled'],
    ['  Services:', ''],
  ], 26) + formatKeyValues([
    ['  - ClusterIP:', enabled(svc.clusterIP)],
    ['  - NodePort:', svc.nodePort ? `Enabled (Range: ${f.nodePortRange ?? '30000-32767'})` : 'Disabled'],
    ['  - LoadBalancer:', enabled(svc.loadBalancer)],
    ['  - externalIPs:', enabled(svc.externalIPs)],
    ['  - HostPort:', enabled(svc.hostPort)],
  ], 20);
}

/** ciliary's own line: what the userspace datapath has moved (there is no kernel counter to ask). */
function datapathLine(s: AgentStatus): string {
  const d = s.datapath;
  return formatKeyValues([
    ['Endpoints:', `${s.endpoints.ready}/${s.endpoints.total} ready`],
    ...(s.edtQueues?.endpoints ? [edtLine(s.edtQueues)] : []),
    ['Datapath:', `${d.devices} devices, rx ${d.rxPackets} packets (${d.rxBytes} bytes), tx ${d.txPackets} packets (${d.txBytes} bytes), ${d.forwards} forwarded, ${d.drops} dropped`],
    ...(s.features.routing === 'tunnel' ? [tunnelGsoLine(s)] : []),
  ], WIDTH);
}

/** How tunnelled super-packets leave: whole into the kernel's UDP-tunnel GSO, or cut by the agent. */
function tunnelGsoLine(s: AgentStatus): [string, string] {
  const dev = s.features.tunnelGso;
  const rx = `${s.datapath.tunnelGsoRx} received whole`;
  return ['Tunnel GSO:', dev ? `${dev}: ${s.datapath.tunnelGsoTx} super-packets sent whole, ${rx}` : `Disabled (super-packets segmented by the agent), ${rx}`];
}

/** The bandwidth manager's queues: packets held for their departure time, and the pool memory they pin. */
function edtLine(b: NonNullable<AgentStatus['edtQueues']>): [string, string] {
  return ['EDT queues:', `${b.queuedPackets}/${b.capacityPackets} packets held (${Math.round(b.queuedBytes / 1024)} KiB) for ${b.endpoints} rate-limited endpoints`];
}

export async function statusCommand(args: ParsedArgs, client: AgentClient, io: Out): Promise<number> {
  checkFlags(args, 'status', ['verbose', 'output']);
  if (args.positionals.length) throw new UsageError(`unexpected argument "${args.positionals[0]}"`);
  const status = await client.get<AgentStatus>('/v1/status');
  const output = str(args, 'output');
  if (output === 'json') io.out(JSON.stringify(status, null, 2) + '\n');
  else if (output !== undefined) throw new UsageError(`--output must be json, not "${output}"`);
  else io.out(formatStatus(status, count(args, 'verbose') > 0));
  return 0;
}
