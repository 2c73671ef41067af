// The ARP side of L2 announcements without eBPF: the node's kernel answers ARP for an announced
// address through a proxy neighbour entry (`ip neigh add proxy IP dev DEV`) with DEV's own MAC. The
// kernel answers a pneigh entry only for an address it forwards out of another device, so the
// address is routed into cilium_host (where the datapath's LoadBalancer frontends take it), and
// proxy_delay is 0 so the answer is immediate. A takeover is made known with a gratuitous ARP.
// The answers end with the agent: its cilium_host TUN loses carrier when the agent's fd closes, and
// with ignore_routes_with_linkdown the kernel no longer routes the address there, so it stops answering.
import { writeFileSync } from 'node:fs';
import { HOST_IFNAME } from '../host.ts';
import { ipBatch, run } from '../sh.ts';
import type { Announcement } from './policy.ts';

export interface L2Responder {
  /** Starts answering ARP for ip on dev, and tells the segment (gratuitous ARP). */
  announce(a: Announcement): Promise<void>;
  withdraw(a: Announcement): Promise<void>;
  /** Removes entries an earlier agent process of this node left (it died holding them; they were silent since). */
  cleanStale(keep: (a: Announcement) => boolean): Promise<void>;
}

function sysctl(path: string, value: string): void {
  try {
    writeFileSync(`/proc/sys/${path}`, value);
  } catch {
    /* read-only /proc/sys: the answer comes after the kernel's proxy delay */
  }
}

export class ProxyArpResponder implements L2Responder {
  private readonly prepared = new Set<string>();

  async announce(a: Announcement): Promise<void> {
    if (!this.prepared.has(a.dev)) {
      sysctl(`net/ipv4/neigh/${a.dev}/proxy_delay`, '0');
      sysctl(`net/ipv4/conf/${HOST_IFNAME}/ignore_routes_with_linkdown`, '1');
      // arping sends the gratuitous ARP from the announced address, which no device holds.
      sysctl('net/ipv4/ip_nonlocal_bind', '1');
      this.prepared.add(a.dev);
    }
    await ipBatch([`route replace ${a.ip}/32 dev ${HOST_IFNAME}`, `neigh replace proxy ${a.ip} dev ${a.dev}`]);
    // -U: unsolicited ARP (sender and target = the address), so neighbours replace the MAC they cached.
    await run('arping', ['-U', '-c', '1', '-I', a.dev, a.ip]).catch(() => undefined);
  }

  async withdraw(a: Announcement): Promise<void> {
    await ipBatch([`neigh del proxy ${a.ip} dev ${a.dev}`]).catch(() => undefined);
    await ipBatch([`route del ${a.ip}/32 dev ${HOST_IFNAME}`]).catch(() => undefined);
  }

  async cleanStale(keep: (a: Announcement) => boolean): Promise<void> {
    const routed = new Set((JSON.parse(await run('ip', ['-j', '-4', 'route', 'show', 'dev', HOST_IFNAME])) as Array<{ dst: string }>)
      .flatMap((r) => (/^\d+\.\d+\.\d+\.\d+$/.test(r.dst) ? [r.dst] : [])));
    const proxies = JSON.parse(await run('ip', ['-j', '-4', 'neigh', 'show', 'proxy'])) as Array<{ dst: string; dev: string }>;
    // Ours are the proxy entries for an address routed into cilium_host.
    for (const p of proxies) if (routed.has(p.dst) && !keep({ ip: p.dst, dev: p.dev })) await this.withdraw({ ip: p.dst, dev: p.dev });
  }
}

/** The node's interfaces that can announce: up, Ethernet, not the datapath's own. */
export async function announceableDevices(): Promise<string[]> {
  const links = JSON.parse(await run('ip', ['-j', 'link', 'show'])) as Array<{ ifname: string; link_type: string; flags: string[] }>;
  return links.filter((l) => l.link_type === 'ether' && l.flags.includes('UP') && l.ifname !== HOST_IFNAME).map((l) => l.ifname).sort();
}
