// What the agent needs from the machine: the store, map files, cilium_host, pod namespaces, processes
// and listening sockets — real on a node, none of them for an agent core in memory (unit tests).
import { mkdirSync } from 'node:fs';
import { native } from '../native/index.ts';
import { MapRegistry } from '../maps/index.ts';
import type { AgentConfig } from '../control/config.ts';
import { LocalKVStore, openKVStore, type KVStore } from '../control/kvstore.ts';
import { setupHostDevice } from '../control/host.ts';
import { linuxPodNetwork, memoryPodNetwork, type PodNetwork } from '../control/podnet.ts';

export interface HostDevice {
  /** -1: no device to read. */
  fd: number;
  ifindex: number;
}

export interface AgentPlatform {
  openStore(cfg: AgentConfig): Promise<KVStore>;
  maps(cfg: AgentConfig): MapRegistry;
  hostDevice(routerIP: string, podCidr: string, cfg: AgentConfig): Promise<HostDevice>;
  pods: PodNetwork;
  /** Pod commands run as processes. */
  processes: boolean;
  /** The DNS server, L7 proxy, metrics and web page listen. */
  sockets: boolean;
}

/** A real node: state directory, pinned maps, TUN devices, namespaces, processes. */
export function linuxPlatform(): AgentPlatform {
  return {
    openStore: async (cfg) => {
      mkdirSync(cfg['state-dir'], { recursive: true });
      return openKVStore(cfg.kvstore, cfg['state-dir'], cfg['kvstore-opt']);
    },
    maps: (cfg) => new MapRegistry(cfg['state-dir'], native.mapFile, { sync: native.syncMap }),
    hostDevice: (routerIP, podCidr, cfg) => setupHostDevice(routerIP, podCidr, cfg['service-cluster-ip-range'], cfg.mtu, cfg['enable-offloads']),
    pods: linuxPodNetwork,
    processes: true,
    sockets: true,
  };
}

/** The agent core: in-memory store and maps, no devices, namespaces, processes or listeners. */
export function memoryPlatform(kv: KVStore = LocalKVStore.inMemory()): AgentPlatform {
  return {
    openStore: async () => kv,
    maps: (cfg) => new MapRegistry(cfg['state-dir'], native.mapFile, { inMemory: true }),
    hostDevice: async () => ({ fd: -1, ifindex: 1 }),
    pods: memoryPodNetwork(),
    processes: false,
    sockets: false,
  };
}
