// The L7 and DNS proxies' upstream leg enters the datapath whatever its destination: a policy rule
// routes packets from the router IP with a source port of the proxies' upstream range into
// cilium_host, where bpf_host gives them their client pod's address and port (cilium_proxy4). Without
// it, a server on another node (native routing) or beyond masquerade would see the router IP; with
// it, it sees the pod, as behind Cilium's transparent proxy. The listeners' answers (proxy ports, just
// below that range) take the same way: to a client on another node (native routing) the main table
// would send them out of the node with the router IP as source, where bpf_host gives them the
// server's address.
import type { Logger } from 'pino';
import { run } from './sh.ts';
import { HOST_IFNAME } from './host.ts';
import { PROXY_PORT_MAX, PROXY_PORT_MIN, UPSTREAM_PORT_MAX, UPSTREAM_PORT_MIN } from '../maps/cilium/proxy.ts';

/** `protocol` of the rules and the route this module installs. */
export const PROXY_RULE_PROTO = 199;
/** The routing table whose default route is cilium_host, for the proxies' packets only. */
export const PROXY_TABLE = 2007;
/** Before the local rule (100, north-south-routing.ts) and after the steering rules (20-22). */
export const PREF_PROXY_UPSTREAM = 26;

// One contiguous range: the listeners' ports, then the upstream sockets'.
if (UPSTREAM_PORT_MIN !== PROXY_PORT_MAX + 1) throw new Error('proxy and upstream port ranges must be adjacent');

/** The `ip rule` lines (without the verb) for the proxies on `routerIP`: listeners' answers and upstream legs. */
export function proxyUpstreamRules(routerIP: string): string[] {
  return ['tcp', 'udp'].map((proto) => `pref ${PREF_PROXY_UPSTREAM} from ${routerIP} ipproto ${proto} sport ${PROXY_PORT_MIN}-${UPSTREAM_PORT_MAX} lookup ${PROXY_TABLE} protocol ${PROXY_RULE_PROTO}`);
}

/** Installs the rules and the table's route in the current (node) namespace, replacing earlier ones of ours. */
export async function installProxyUpstreamRouting(routerIP: string, log: Logger): Promise<void> {
  await run('ip', ['-4', 'route', 'replace', 'default', 'dev', HOST_IFNAME, 'table', String(PROXY_TABLE), 'proto', String(PROXY_RULE_PROTO)]);
  // A rule left by an earlier run (perhaps another router IP) goes first; `del` by pref takes one at a time.
  while (await run('ip', ['-4', 'rule', 'del', 'pref', String(PREF_PROXY_UPSTREAM)]).then(() => true, () => false));
  for (const line of proxyUpstreamRules(routerIP)) await run('ip', ['-4', 'rule', 'add', ...line.split(' ')]);
  log.info({ routerIP, table: PROXY_TABLE }, 'proxy: upstream leg routed through cilium_host');
}
