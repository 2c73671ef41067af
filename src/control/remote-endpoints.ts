// The endpoints of the other nodes, followed in the store: their pod addresses enter this node's
// ipcache with their identity and leave it with them, so policy knows a remote peer.
import type { Logger } from 'pino';
import type { KVStore, KVWatch } from './kvstore.ts';
import type { EndpointMaps } from './endpoint-maps.ts';

/** prefix: <prefix><node>/<namespace>/<pod> holds each node's endpoint records (id/ and host are not pods). */
export function followRemoteEndpoints(kv: KVStore, prefix: string, self: string, maps: EndpointMaps, log: Logger): KVWatch {
  const remote = new Map<string, string>(); // store key → pod IP
  return kv.watch(prefix, (e) => {
    const [node, first] = e.key.slice(prefix.length).split('/');
    if (node === self || first === 'id' || first === 'host') return;
    const ip = remote.get(e.key);
    if (ip !== undefined) maps.setIpcache(`${ip}/32`, 0);
    remote.delete(e.key);
    if (e.type === 'delete') return;
    try {
      const r = JSON.parse(e.value) as { podIP: string; identity: number };
      maps.setIpcache(`${r.podIP}/32`, r.identity);
      remote.set(e.key, r.podIP);
    } catch (err) {
      log.warn({ key: e.key, err: (err as Error).message }, 'remote endpoint record does not parse; skipped');
    }
  });
}
