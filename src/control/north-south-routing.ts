// North-south steering: the node's kernel must not answer what the datapath owns. Packets arriving
// on the native device for the masquerade port range (replies to SNATed pod flows), for the NodePort
// range, and ICMP (echo replies to translated ids, errors about translated packets), services'
// externalIPs and LoadBalancer addresses, containers' hostPorts, and the node's own connections to its NodePorts (iif lo)
// are routed by policy rules into a table whose default route is cilium_host, so they enter bpf_host before the
// node's stack sees them; what bpf_host does not claim it writes back into cilium_host, where the
// local table delivers it. As Cilium, the `local` rule moves from 0 to 100 behind these rules.
// The rules carry their own protocol number: a restart with the same ranges changes nothing, other
// ranges replace them; the lab's `down` removes the namespace and with it every rule.
import { writeFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { run } from './sh.ts';
import { HOST_IFNAME } from './host.ts';

/** `protocol` of the rules and the route this module installs. */
export const NS_RULE_PROTO = 198;
/** The routing table whose default route is cilium_host. */
export const NS_TABLE = 2006;
/** Where the local table's rule goes (Cilium's). */
export const LOCAL_RULE_PREF = 100;
export const PREF_NAT = 20;
export const PREF_NODEPORT = 21;
export const PREF_ICMP = 22;
/** externalIPs and hostPorts: they change with services and pods. */
export const PREF_FRONTENDS = 23;
export const DEFAULT_NODEPORT_RANGE: [number, number] = [30000, 32767];

export interface SteeringPlan {
  /** The native device (eth1 in the labs). */
  device: string;
  /** Masquerade ports (replies to SNATed flows), or null when masquerade is off. */
  natPorts: [number, number] | null;
  /** NodePort range, or null when no NodePort datapath runs. */
  nodePorts: [number, number] | null;
  /** The node's own addresses: its connections to them on the NodePort range are steered too (iif lo). */
  localAddrs: readonly string[];
  /** What services and pods open to the outside besides the NodePort range. */
  frontends: SteeredFrontends;
}

/** Frontends the outside reaches on addresses or ports of their own. */
export interface SteeredFrontends {
  /** Services' spec.externalIPs and LoadBalancer ingress addresses: routed to the node by the client (or announced), into cilium_host here. */
  addresses: string[];
  /** Containers' hostPorts, on the node's addresses (localAddrs). */
  hostPorts: Array<{ protocol: 'tcp' | 'udp'; port: number }>;
}

export const NO_FRONTENDS: SteeredFrontends = { addresses: [], hostPorts: [] };

interface RuleJson {
  priority?: number;
  iif?: string;
  dst?: string;
  dstlen?: number;
  ipproto?: string;
  dport_start?: number;
  dport_end?: number;
  table?: string;
  protocol?: string;
}

/** iproute2 (6.1) refuses dport 65535 in a rule: config.ts keeps the ranges below it. */
const dportSelector = ([lo, hi]: [number, number]): string => (lo === hi ? `${lo}` : `${lo}-${hi}`);

/** The `ip rule` lines a plan needs (without the verb), in install order. */
export function steeringRules(p: SteeringPlan): string[] {
  const tail = `lookup ${NS_TABLE} protocol ${NS_RULE_PROTO}`;
  const out: string[] = [];
  const ranges: Array<[number, [number, number] | null]> = [[PREF_NAT, p.natPorts], [PREF_NODEPORT, p.nodePorts]];
  for (const [pref, range] of ranges) {
    if (!range) continue;
    for (const proto of ['tcp', 'udp']) out.push(`pref ${pref} iif ${p.device} ipproto ${proto} dport ${dportSelector(range)} ${tail}`);
  }
  if (!out.length) return out;
  out.push(`pref ${PREF_ICMP} iif ${p.device} ipproto icmp ${tail}`);
  if (p.nodePorts) {
    for (const addr of p.localAddrs) for (const proto of ['tcp', 'udp']) out.push(`pref ${PREF_NODEPORT} iif lo to ${addr} ipproto ${proto} dport ${dportSelector(p.nodePorts)} ${tail}`);
  }
  for (const ip of [...new Set(p.frontends.addresses)].sort()) out.push(`pref ${PREF_FRONTENDS} iif ${p.device} to ${ip} ${tail}`);
  const hostPorts = new Set(p.frontends.hostPorts.map((h) => `${h.protocol} dport ${h.port}`));
  for (const h of [...hostPorts].sort()) for (const addr of p.localAddrs) out.push(`pref ${PREF_FRONTENDS} iif ${p.device} to ${addr} ipproto ${h} ${tail}`);
  return out;
}

/** A rule as `ip -j rule show` describes it, in steeringRules' form (ours only). */
function ruleText(r: RuleJson): string {
  const to = r.dst === undefined || r.dst === 'all' ? '' : ` to ${r.dst}${r.dstlen === undefined || r.dstlen === 32 ? '' : `/${r.dstlen}`}`;
  const ipproto = r.ipproto === undefined ? '' : ` ipproto ${r.ipproto}`;
  const dport = r.dport_start === undefined ? '' : ` dport ${r.dport_start === r.dport_end ? r.dport_start : `${r.dport_start}-${r.dport_end}`}`;
  return `pref ${r.priority} iif ${r.iif}${to}${ipproto}${dport} lookup ${r.table} protocol ${r.protocol}`;
}

async function rules(): Promise<RuleJson[]> {
  return JSON.parse((await run('ip', ['-4', '-j', 'rule', 'show'])) || '[]') as RuleJson[];
}

function sysctl(path: string, value: string, log: Logger): void {
  try {
    writeFileSync(`/proc/sys/${path}`, value);
  } catch (e) {
    log.warn({ path, err: (e as Error).message }, 'north-south: sysctl not set');
  }
}

/**
 * Installs the plan in the current (node) namespace, idempotently: returns the rules in force.
 * With neither range, the rules go (the local rule stays at its new place).
 */
export async function installSteering(p: SteeringPlan, log: Logger): Promise<string[]> {
  const want = steeringRules(p);
  const have = await rules();
  const ours = new Set(have.filter((r) => r.protocol === String(NS_RULE_PROTO)).map(ruleText));
  const wanted = new Set(want);
  // Only the difference changes: a service's externalIP coming or going leaves the other rules in force.
  const stale = [...ours].filter((t) => !wanted.has(t));
  const missing = want.filter((t) => !ours.has(t));
  if (want.length) {
    await run('ip', ['-4', 'route', 'replace', 'default', 'dev', HOST_IFNAME, 'table', String(NS_TABLE), 'proto', String(NS_RULE_PROTO)]);
    // Packets the datapath sends into the stack with the node IP as source (SNATed) are not martians.
    sysctl(`net/ipv4/conf/${HOST_IFNAME}/accept_local`, '1', log);
    sysctl(`net/ipv4/conf/${HOST_IFNAME}/rp_filter`, '0', log);
    // The node's own connections never take a steered port as their local port.
    const reserved = [p.natPorts, p.nodePorts].filter((r): r is [number, number] => r !== null).map(([a, b]) => `${a}-${b}`).join(',');
    sysctl('net/ipv4/ip_local_reserved_ports', reserved, log);
  }
  for (const line of missing) await run('ip', ['-4', 'rule', 'add', ...line.split(' ')]);
  for (const line of stale) await run('ip', ['-4', 'rule', 'del', ...line.split(' ')]).catch(() => undefined);
  if (want.length && have.some((r) => r.priority === 0 && r.table === 'local')) {
    // First the new place, then the old one goes: local delivery never stops.
    if (!have.some((r) => r.priority === LOCAL_RULE_PREF && r.table === 'local')) await run('ip', ['-4', 'rule', 'add', 'pref', String(LOCAL_RULE_PREF), 'lookup', 'local']);
    await run('ip', ['-4', 'rule', 'del', 'pref', '0', 'lookup', 'local']);
  }
  if (!want.length) await run('ip', ['-4', 'route', 'flush', 'table', String(NS_TABLE)]).catch(() => undefined);
  if (missing.length || stale.length) log.info({ device: p.device, rules: want.length, added: missing.length, removed: stale.length, natPorts: p.natPorts, nodePorts: p.nodePorts }, 'north-south: steering rules installed');
  return want;
}

/** The device holding `nodeIP` (Cilium's auto-detected native device), or undefined. */
export async function deviceOf(nodeIP: string): Promise<string | undefined> {
  if (!nodeIP) return undefined;
  const links = JSON.parse((await run('ip', ['-4', '-j', 'addr', 'show'])) || '[]') as Array<{ ifname: string; addr_info?: Array<{ local?: string }> }>;
  return links.find((l) => l.addr_info?.some((a) => a.local === nodeIP))?.ifname;
}

/** Whether `name` is a device of this namespace. */
export async function deviceExists(name: string): Promise<boolean> {
  return run('ip', ['link', 'show', 'dev', name]).then(() => true, () => false);
}

/** The first IPv4 address of `device`. */
export async function deviceAddress(device: string): Promise<string> {
  const links = JSON.parse((await run('ip', ['-4', '-j', 'addr', 'show', 'dev', device])) || '[]') as Array<{ addr_info?: Array<{ local?: string }> }>;
  const addr = links[0]?.addr_info?.[0]?.local;
  if (!addr) throw new Error(`north-south: device ${device} has no IPv4 address`);
  return addr;
}
