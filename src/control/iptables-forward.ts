// Cilium's CILIUM_FORWARD chain: the node forwards pod traffic between cilium_host, cilium_vxlan and
// its devices, and a host whose FORWARD policy is DROP (Docker sets one) would drop it; Cilium
// accepts its own devices' traffic first, and so do we. Refilled at start, removed at stop.
import type { Logger } from 'pino';
import { run } from './sh.ts';

export const FORWARD_CHAIN = 'CILIUM_FORWARD';
const FEEDER = ['-m', 'comment', '--comment', `cilium-feeder: ${FORWARD_CHAIN}`, '-j', FORWARD_CHAIN];

const iptables = (...args: string[]) => run('iptables', ['-w', '-t', 'filter', ...args]);

/** The chain's rules, as Cilium words them, for cilium_host and (in tunnel mode) cilium_vxlan. */
export function forwardRules(tunnelDevice?: string): string[][] {
  const accept = (dir: '-i' | '-o', dev: string, what: string) => [dir, dev, '-m', 'comment', '--comment', `cilium: ${what}`, '-j', 'ACCEPT'];
  const rules = [
    accept('-o', 'cilium_host', 'any->cluster on cilium_host forward accept'),
    accept('-i', 'cilium_host', 'cluster->any on cilium_host forward accept (nodeport)'),
  ];
  if (tunnelDevice) rules.push(accept('-i', tunnelDevice, `cluster->any on ${tunnelDevice} forward accept (tunnel)`));
  return rules;
}

/** Installs chain, feeder (first in FORWARD, ahead of anything that drops) and rules; false, logged, when iptables refuses. */
export async function installForwardAccept(tunnelDevice: string | undefined, log: Logger): Promise<boolean> {
  try {
    await iptables('-N', FORWARD_CHAIN).catch(() => undefined); // exists after a restart
    await iptables('-F', FORWARD_CHAIN);
    if (!(await iptables('-C', 'FORWARD', ...FEEDER).then(() => true, () => false))) await iptables('-I', 'FORWARD', '1', ...FEEDER);
    for (const r of forwardRules(tunnelDevice)) await iptables('-A', FORWARD_CHAIN, ...r);
    return true;
  } catch (e) {
    log.warn({ err: (e as Error).message }, 'iptables: CILIUM_FORWARD not installed; a FORWARD policy of DROP would drop forwarded pod traffic');
    return false;
  }
}

/** Removes feeder and chain; what is already gone is fine. */
export async function removeForwardAccept(): Promise<void> {
  await iptables('-D', 'FORWARD', ...FEEDER).catch(() => undefined);
  await iptables('-F', FORWARD_CHAIN).catch(() => undefined);
  await iptables('-X', FORWARD_CHAIN).catch(() => undefined);
}
