// Host firewall for traffic from outside: the node's kernel delivers what arrives on the native
// device for the node IP itself, so with enable-host-firewall the node's own ports (1-32767: below
// the ephemeral range, so replies to the node's own connections stay in the kernel) are routed into
// cilium_host, where bpf_host enforces the host policy and writes what passes back for local delivery.
// The control plane is never steered (etcd, the kube API, Hubble, agent health, VXLAN): a host policy,
// or an agent that is down, cannot cut a node off its cluster. And when the agent is down its TUN has
// no carrier: with ignore_routes_with_linkdown the steering route is skipped and the node's ports
// answer unfiltered (fail-open), rather than vanishing into a device nobody reads.
import { writeFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { run } from './sh.ts';
import { HOST_IFNAME } from './host.ts';

/** `protocol` of the rules and the route this module installs. */
export const HOSTFW_RULE_PROTO = 197;
export const HOSTFW_TABLE = 2008;
/** After the north-south steering (20-22) and the proxies' upstream rule (23), before local (100). */
export const PREF_HOSTFW_EXEMPT = 24;
export const PREF_HOSTFW = 25;
/** The node's own service ports the host firewall sees from outside. */
export const HOSTFW_PORTS = '1-32767';
/** Never steered: etcd client and peer, kube-apiserver, agent health, Hubble and its relay (TCP); VXLAN (UDP). */
export const CONTROL_PLANE_PORTS: ReadonlyArray<[proto: 'tcp' | 'udp', ports: string]> = [
  ['tcp', '2379-2380'], ['tcp', '6443'], ['tcp', '4240'], ['tcp', '4244-4245'], ['udp', '8472'],
];

/** The `ip rule` lines (without the verb) for the native `device` and the node's address. */
export function hostFirewallRules(device: string, nodeIP: string): string[] {
  const tail = `protocol ${HOSTFW_RULE_PROTO}`;
  return [
    ...CONTROL_PLANE_PORTS.map(([proto, ports]) => `pref ${PREF_HOSTFW_EXEMPT} iif ${device} to ${nodeIP} ipproto ${proto} dport ${ports} lookup local ${tail}`),
    ...['tcp', 'udp'].map((proto) => `pref ${PREF_HOSTFW} iif ${device} to ${nodeIP} ipproto ${proto} dport ${HOSTFW_PORTS} lookup ${HOSTFW_TABLE} ${tail}`),
  ];
}

function sysctl(path: string, value: string, without: string, log: Logger): void {
  try {
    writeFileSync(`/proc/sys/${path}`, value);
  } catch (e) {
    log.warn({ path, err: (e as Error).message }, `host firewall: sysctl not set; ${without}`);
  }
}

async function deleteAll(pref: number): Promise<void> {
  while (await run('ip', ['-4', 'rule', 'del', 'pref', String(pref)]).then(() => true, () => false));
}

/** Installs the steering in the current (node) namespace, replacing earlier rules of ours. */
export async function installHostFirewallRouting(device: string, nodeIP: string, log: Logger): Promise<void> {
  await run('ip', ['-4', 'route', 'replace', 'default', 'dev', HOST_IFNAME, 'table', String(HOSTFW_TABLE), 'proto', String(HOSTFW_RULE_PROTO)]);
  sysctl(`net/ipv4/conf/${HOST_IFNAME}/ignore_routes_with_linkdown`, '1', "the node's ports are unreachable from outside while the agent is down", log);
  // Early demux would hand a connection's later packets its socket before routing, and the kernel
  // never forwards a packet that already has a socket: they would be dropped instead of steered.
  sysctl('net/ipv4/ip_early_demux', '0', "the node's TCP connections from outside stall after the SYN", log);
  await deleteAll(PREF_HOSTFW_EXEMPT);
  await deleteAll(PREF_HOSTFW);
  for (const line of hostFirewallRules(device, nodeIP)) await run('ip', ['-4', 'rule', 'add', ...line.split(' ')]);
  log.info({ device, nodeIP, ports: HOSTFW_PORTS, exempt: CONTROL_PLANE_PORTS.map(([p, r]) => `${r}/${p}`) }, 'host firewall: the node\'s ports on the native device go through the datapath');
}
