// An endpoint's datapath state: per-endpoint arrays, cilium_lxc, cilium_ipcache, program array,
// policy map and device reader — written on create/restore and removed on delete.
import { native } from '../native/index.ts';
import type { Datapath } from '../dataplane/datapath.ts';
import { ENDPOINT_F_HOST, LXC_FLAGS, LXC_ID, LXC_IFINDEX, LXC_KEY, LXC_SEC_ID, LXC_VALUE } from '../maps/cilium/lxc.ts';
import { IPCACHE_KEY, IPCACHE_VALUE, IPC_SEC_ID } from '../maps/cilium/ipcache.ts';
import { parseIPv4 } from '../wire/ip-text.ts';
import { cil_from_container, cil_from_host, ENDPOINT_CALLS, HOST_CALLS } from '../dataplane/programs/index.ts';
import { POLICY_KEY_SIZE, type PolicyEntry } from '../policy/index.ts';
import { writePolicyMap } from './policy.ts';

export const HOST_IDENTITY = 1;
const WORLD_IDENTITY = 2;
const ALLOW_ALL: PolicyEntry[] = [true, false].map((egress) => ({ identity: 0, egress, protocol: 0, port: 0, portPrefixLen: 0, deny: false, proxyPort: 0, ruleLabels: [] }));

/** The fields of an endpoint its maps are made from. */
export interface PlumbedEndpoint {
  id: number;
  podIP: string;
  identity: number;
  ifindex: number;
}

export class EndpointMaps {
  constructor(private readonly dp: Datapath) {}

  /**
   * The host endpoint (cilium_host) and the host's addresses; fd -1 = no device to read (agent core).
   * policyMapMax > 0 (enable-host-firewall): it gets a policy map, allow-all until a host policy selects it.
   */
  plumbHost(id: number, fd: number, ifindex: number, addresses: string[], routerIP: string, policyMapMax = 0): void {
    const dp = this.dp;
    dp.hostEp = id;
    dp.hostFd = fd;
    dp.epIdentity[id] = HOST_IDENTITY;
    dp.epIfindex[id] = ifindex;
    dp.epIp[id] = parseIPv4(routerIP);
    dp.installPrograms(id, HOST_CALLS);
    if (policyMapMax > 0) {
      const policy = dp.installPolicyMap(id, policyMapMax);
      if (policy.count === 0) writePolicyMap(policy, ALLOW_ALL, new Uint8Array(POLICY_KEY_SIZE));
    }
    for (const ip of addresses) {
      this.putLxc(ip, id, ifindex, HOST_IDENTITY, ENDPOINT_F_HOST);
      this.putIpcache(ip, 32, HOST_IDENTITY);
    }
    this.putIpcache('0.0.0.0', 0, WORLD_IDENTITY);
    if (fd >= 0) dp.attach(id, fd, cil_from_host);
  }

  /** A pod endpoint; fd -1 = no device to read (agent core). */
  plumb(r: PlumbedEndpoint, fd: number, policyMapMax: number): void {
    const dp = this.dp;
    dp.epIp[r.id] = parseIPv4(r.podIP);
    dp.epIdentity[r.id] = r.identity;
    dp.epIfindex[r.id] = r.ifindex;
    dp.installPrograms(r.id, ENDPOINT_CALLS);
    const policy = dp.installPolicyMap(r.id, policyMapMax);
    // Until policy is computed for it the endpoint keeps what it had (allow all when new).
    if (policy.count === 0) writePolicyMap(policy, ALLOW_ALL, new Uint8Array(POLICY_KEY_SIZE));
    this.putLxc(r.podIP, r.id, r.ifindex, r.identity, 0);
    this.putIpcache(r.podIP, 32, r.identity);
    if (fd >= 0) dp.attach(r.id, fd, cil_from_container);
  }

  unplumb(r: PlumbedEndpoint, fd: number | undefined): void {
    const dp = this.dp;
    dp.detach(r.id);
    if (fd !== undefined) native.closeFd(fd);
    this.deleteLxc(r.podIP);
    this.deleteIpcache(r.podIP, 32);
    dp.removePrograms(r.id);
    dp.removePolicyMap(r.id);
    dp.epIp[r.id] = 0;
    dp.epIdentity[r.id] = 0;
    dp.epIfindex[r.id] = 0;
  }

  /** An ipcache prefix for a CIDR identity (identity 0 removes it). */
  setIpcache(cidr: string, identity: number): void {
    const [ip, len] = cidr.split('/');
    if (identity === 0) this.deleteIpcache(ip, Number(len));
    else this.putIpcache(ip, Number(len), identity);
  }

  private putLxc(ip: string, id: number, ifindex: number, identity: number, flags: number): void {
    const k = new Uint8Array(LXC_KEY);
    new DataView(k.buffer).setUint32(0, parseIPv4(ip));
    const v = new Uint8Array(LXC_VALUE);
    const vv = new DataView(v.buffer);
    vv.setUint32(LXC_IFINDEX, ifindex, true);
    vv.setUint16(LXC_ID, id, true);
    vv.setUint16(LXC_FLAGS, flags, true);
    vv.setUint32(LXC_SEC_ID, identity, true);
    const rc = this.dp.lxc.update(k, 0, v, 0, 0);
    if (rc < 0) throw new Error(`cilium_lxc update for ${ip} failed (${rc})`);
  }

  private deleteLxc(ip: string): void {
    const k = new Uint8Array(LXC_KEY);
    new DataView(k.buffer).setUint32(0, parseIPv4(ip));
    this.dp.lxc.delete(k, 0);
  }

  private ipcacheKey(ip: string, prefix: number): Uint8Array {
    const k = new Uint8Array(IPCACHE_KEY);
    const kv = new DataView(k.buffer);
    kv.setUint32(0, prefix, true);
    kv.setUint32(4, parseIPv4(ip));
    return k;
  }

  private putIpcache(ip: string, prefix: number, identity: number): void {
    const v = new Uint8Array(IPCACHE_VALUE);
    new DataView(v.buffer).setUint32(IPC_SEC_ID, identity, true);
    const rc = this.dp.ipcache.update(this.ipcacheKey(ip, prefix), 0, v, 0, 0);
    if (rc < 0) throw new Error(`cilium_ipcache update for ${ip}/${prefix} failed (${rc})`);
  }

  private deleteIpcache(ip: string, prefix: number): void {
    this.dp.ipcache.delete(this.ipcacheKey(ip, prefix), 0);
  }
}
