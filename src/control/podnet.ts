// A pod's network namespace: the namespace itself, its TUN eth0 held by the agent, address,
// routes through the router IP, resolv.conf and hosts — made and unmade as one step each.
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { native, type TunDevice } from '../native/index.ts';
import { ipBatch, run } from './sh.ts';

export const netnsPath = (name: string) => `/var/run/netns/${name}`;
export const POD_IFNAME = 'eth0';

export interface PodNetConfig {
  netns: string;
  podIP: string;
  routerIP: string;
  hostname: string;
  namespace: string;
  dnsIP: string;
  mtu: number;
  offloads: boolean;
}

export function netnsExists(name: string): boolean {
  return existsSync(netnsPath(name));
}

/** Creates the namespace and its eth0; on any failure removes what it made and rethrows. */
export async function createPodNetwork(c: PodNetConfig): Promise<TunDevice> {
  await run('ip', ['netns', 'add', c.netns]);
  let dev: TunDevice | undefined;
  try {
    dev = native.tunOpen(POD_IFNAME, netnsPath(c.netns), true, c.offloads, true, true);
    native.setMtu(POD_IFNAME, netnsPath(c.netns), c.mtu);
    await ipBatch([
      'link set lo up',
      `addr add ${c.podIP}/32 dev ${POD_IFNAME}`,
      `link set ${POD_IFNAME} up`,
      `route add ${c.routerIP} dev ${POD_IFNAME} scope link`,
      `route add default via ${c.routerIP} dev ${POD_IFNAME} mtu ${c.mtu}`,
    ], c.netns);
    // IPv6 is off in the labs; without this the kernel would send router solicitations forever.
    await run('ip', ['netns', 'exec', c.netns, 'sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    writePodEtc(c);
    return dev;
  } catch (e) {
    if (dev) native.closeFd(dev.fd);
    await deletePodNetwork(c.netns);
    throw e;
  }
}

/** Files `ip netns exec` bind-mounts over /etc inside the pod. */
function writePodEtc(c: PodNetConfig): void {
  const dir = `/etc/netns/${c.netns}`;
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${dir}/resolv.conf`, `nameserver ${c.dnsIP}\nsearch ${c.namespace}.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n`);
  writeFileSync(`${dir}/hosts`, `127.0.0.1\tlocalhost\n${c.podIP}\t${c.hostname}\n`);
}

/** Re-attaches to a pod's persistent eth0 after an agent restart. */
export function attachPodDevice(netns: string, offloads: boolean): TunDevice {
  return native.tunOpen(POD_IFNAME, netnsPath(netns), true, offloads, true, false);
}

/** Removes device, namespace and /etc/netns files; absent pieces are fine. */
export async function deletePodNetwork(netns: string): Promise<void> {
  if (netnsExists(netns)) {
    try {
      native.tunDelete(POD_IFNAME, netnsPath(netns));
    } catch {
      /* the namespace may be half made; deleting it removes the device too */
    }
    await run('ip', ['netns', 'del', netns]).catch(() => undefined);
  }
  rmSync(`/etc/netns/${netns}`, { recursive: true, force: true });
}

/** How pods get their network: real namespaces and TUN devices, or nothing (an agent core in memory). */
export interface PodNetwork {
  create(c: PodNetConfig): Promise<TunDevice>;
  /** Re-attaches to a pod's eth0 after an agent restart. */
  attach(netns: string, offloads: boolean): TunDevice;
  delete(netns: string): Promise<void>;
  exists(netns: string): boolean;
}

export const linuxPodNetwork: PodNetwork = { create: createPodNetwork, attach: attachPodDevice, delete: deletePodNetwork, exists: netnsExists };

/** Pods without namespaces or devices: fd -1 (no reader), ifindexes counted from 100. */
export function memoryPodNetwork(): PodNetwork {
  const made = new Map<string, number>();
  let next = 100;
  const device = (netns: string): TunDevice => ({ fd: -1, ifindex: made.get(netns)!, offloads: 0, vnetHdr: false });
  return {
    create: async (c) => {
      made.set(c.netns, next++);
      return device(c.netns);
    },
    attach: (netns) => device(netns),
    delete: async (netns) => void made.delete(netns),
    exists: (netns) => made.has(netns),
  };
}
