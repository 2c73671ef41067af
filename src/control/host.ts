// The node side of the datapath: cilium_host, a TUN in the node's namespace holding the router IP,
// with routes for the pod CIDR and the service CIDR into it. Packets the stack sends there enter cil_from_host.
import { writeFileSync } from 'node:fs';
import { native, type TunDevice } from '../native/index.ts';
import { ipBatch } from './sh.ts';

export const HOST_IFNAME = 'cilium_host';

function sysctl(path: string, value: string): void {
  try {
    writeFileSync(`/proc/sys/${path}`, value);
  } catch {
    /* read-only /proc/sys (unprivileged runs): routing still works for local traffic */
  }
}

/** Creates or re-attaches cilium_host and configures address, routes and sysctls. */
export async function setupHostDevice(routerIP: string, podCidr: string, serviceCidr: string, mtu: number, offloads: boolean): Promise<TunDevice> {
  let dev: TunDevice;
  try {
    dev = native.tunOpen(HOST_IFNAME, null, true, offloads, true, false);
  } catch {
    dev = native.tunOpen(HOST_IFNAME, null, true, offloads, true, true);
  }
  native.setMtu(HOST_IFNAME, null, mtu);
  await ipBatch([
    `addr replace ${routerIP}/32 dev ${HOST_IFNAME}`,
    `link set ${HOST_IFNAME} up`,
    `route replace ${podCidr} dev ${HOST_IFNAME} src ${routerIP}`,
    // The node's own processes reach ClusterIPs through the datapath, as with kube-proxy replacement.
    `route replace ${serviceCidr} dev ${HOST_IFNAME} src ${routerIP}`,
  ]);
  sysctl(`net/ipv4/conf/${HOST_IFNAME}/rp_filter`, '0');
  sysctl('net/ipv4/conf/all/rp_filter', '0');
  sysctl('net/ipv4/ip_forward', '1');
  sysctl(`net/ipv6/conf/${HOST_IFNAME}/disable_ipv6`, '1');
  return dev;
}
