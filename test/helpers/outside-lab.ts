// A cluster.sh lab with an outside client on its bridge (the seeds' laptop on the node network), for
// the NodePort test and the north-south bench: the lab's names carry a prefix, its net is free.
import { sh } from './sys.ts';

export const LAB_NODES = ['k8s-ctr', 'k8s-w1', 'k8s-w2'];

/** A /24 (first three octets) in 192.168.100-149 that nothing on this machine uses yet. */
export function freeLabNet(): string {
  const used = sh('ip', ['-4', '-o', 'addr', 'show']) + sh('ip', ['-4', 'route', 'show']);
  for (let i = 0; i < 50; i++) {
    const net = `192.168.${100 + ((process.pid + i) % 50)}`;
    if (!used.includes(`${net}.`)) return net;
  }
  throw new Error('no free 192.168.100-149.0/24 for the lab');
}

/** cluster.sh's bridge name for a prefix. */
export const labBridge = (prefix: string) => (`${prefix}cil-lab-br`.length <= 15 ? `${prefix}cil-lab-br` : `${prefix}br`);

/** Puts namespace `ns` on the lab bridge as `ip`/24 through a veth named `veth` (its host side). */
export function attachOutsideClient(ns: string, prefix: string, veth: string, ip: string): void {
  sh('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
  sh('ip', ['link', 'set', veth, 'master', labBridge(prefix), 'up']);
  sh('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
  sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
}

/** Until the agent's north-south steering is on main: the NodePort range on eth1 into cilium_host, the local rule moved as Cilium does. */
export function steerNodePorts(prefix: string, node: string, nodeIP: string): void {
  const ip = (...a: string[]) => sh('ip', ['-n', `${prefix}${node}`, ...a]);
  ip('rule', 'add', 'pref', '100', 'lookup', 'local');
  ip('rule', 'del', 'pref', '0', 'lookup', 'local');
  ip('route', 'replace', 'default', 'dev', 'cilium_host', 'table', '2005');
  ip('rule', 'add', 'pref', '21', 'to', nodeIP, 'iif', 'eth1', 'ipproto', 'tcp', 'dport', '30000-32767', 'lookup', '2005');
}
