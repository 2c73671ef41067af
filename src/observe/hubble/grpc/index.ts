// The agent's Hubble gRPC endpoints: the Observer API (hubble-listen-address) and, when configured, the
// relay (hubble-relay-listen-address) over hubble-relay-peers or this node. A bad or busy address is
// logged, not fatal, as for the other listeners.
import type { Logger } from 'pino';
import type { AgentConfig } from '../../../control/config.ts';
import type { HubbleApi } from '../../../control/types.ts';
import { startRelay, type Relay } from './relay.ts';
import { RelayClient } from './relay-client.ts';
import { startObserverServer } from './server.ts';
import type { GrpcServer } from './serve.ts';

export interface HubbleGrpc {
  observer?: GrpcServer;
  relay?: Relay;
  /** This agent's own client of its relay (the CLI's and the web page's view of every node). */
  relayClient?: RelayClient;
  close(): Promise<void>;
}

type GrpcConfig = Pick<AgentConfig, 'hubble-listen-address' | 'hubble-relay-listen-address' | 'hubble-relay-peers'>;

/** The relay's peers: the configured list, else this node's Observer. */
export function relayPeers(cfg: GrpcConfig, observer: GrpcServer | undefined): string[] {
  const list = cfg['hubble-relay-peers'].split(',').map((p) => p.trim()).filter(Boolean);
  if (list.length || !observer) return list;
  return [`127.0.0.1:${observer.port}`];
}

/** Where this node reaches a server bound to `address`: loopback when it listens on every address. */
export function localAddress(server: GrpcServer): string {
  const host = server.address.slice(0, server.address.lastIndexOf(':'));
  if (host === '0.0.0.0' || host === '[::]') return `127.0.0.1:${server.port}`;
  return server.address;
}

export async function startHubbleGrpc(cfg: GrpcConfig, hubble: HubbleApi, node: { nodeName: string; version: string; log: Logger }): Promise<HubbleGrpc> {
  const out: HubbleGrpc = { close: async () => { out.relayClient?.close(); await out.relay?.close(); await out.observer?.close(); } };
  if (cfg['hubble-listen-address']) {
    out.observer = await startObserverServer({ address: cfg['hubble-listen-address'], hubble, nodeName: node.nodeName, version: node.version })
      .catch((err: Error) => { node.log.warn({ err: err.message }, 'hubble: observer API not serving'); return undefined; });
    if (out.observer) node.log.info({ address: out.observer.address }, 'hubble observer API listening');
  }
  if (cfg['hubble-relay-listen-address']) {
    const peers = relayPeers(cfg, out.observer);
    out.relay = await startRelay({ address: cfg['hubble-relay-listen-address'], peers, version: node.version, nodeName: node.nodeName })
      .catch((err: Error) => { node.log.warn({ err: err.message }, 'hubble relay: not serving'); return undefined; });
    if (out.relay) {
      node.log.info({ address: out.relay.address, peers }, 'hubble relay listening');
      out.relayClient = new RelayClient(localAddress(out.relay));
    }
  }
  return out;
}
