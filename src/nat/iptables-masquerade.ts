// Masquerade by the kernel (enable-ipv4-masquerade without enable-bpf-masquerade), as Cilium's
// iptables mode: pod traffic leaves the datapath into the node's stack through cilium_host, and a
// MASQUERADE rule in Cilium's CILIUM_POST_nat chain SNATs what goes out the native device toward
// anything outside the native-routing CIDR. The kernel's conntrack undoes it for the replies before
// routing, so they reach cilium_host addressed to the pod. The chain is flushed and refilled at
// start (a restart leaves one rule) and removed at stop.
import type { Logger } from 'pino';
import { run } from '../control/sh.ts';

export const POST_NAT_CHAIN = 'CILIUM_POST_nat';
const FEEDER = ['-m', 'comment', '--comment', `cilium-feeder: ${POST_NAT_CHAIN}`, '-j', POST_NAT_CHAIN];

const iptables = (...args: string[]) => run('iptables', ['-w', '-t', 'nat', ...args]);

/** The rule's arguments after `-A CILIUM_POST_nat`: pod CIDR, not toward `excluded`, out `device`. */
export function masqueradeRule(podCidr: string, excluded: string, device: string): string[] {
  return ['-s', podCidr, '!', '-d', excluded, '-o', device, '-m', 'comment', '--comment', 'cilium masquerade non-cluster', '-j', 'MASQUERADE'];
}

/** Installs chain, feeder and rule (idempotently); throws with iptables' message when it cannot. */
export async function installIptablesMasquerade(podCidr: string, excluded: string, device: string, log: Logger): Promise<void> {
  await iptables('-N', POST_NAT_CHAIN).catch(() => undefined); // exists after a restart
  await iptables('-F', POST_NAT_CHAIN);
  if (!(await iptables('-C', 'POSTROUTING', ...FEEDER).then(() => true, () => false))) await iptables('-A', 'POSTROUTING', ...FEEDER);
  await iptables('-A', POST_NAT_CHAIN, ...masqueradeRule(podCidr, excluded, device));
  log.info({ device, podCidr, excluded }, 'masquerade: iptables MASQUERADE on');
}

/** Removes feeder and chain; what is already gone is fine. */
export async function removeIptablesMasquerade(log: Logger): Promise<void> {
  await iptables('-D', 'POSTROUTING', ...FEEDER).catch(() => undefined);
  await iptables('-F', POST_NAT_CHAIN).catch(() => undefined);
  await iptables('-X', POST_NAT_CHAIN).catch(() => undefined);
  log.info('masquerade: iptables MASQUERADE removed');
}
