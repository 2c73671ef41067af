// Which of a node's writes may wait for the kvstore (kvstore-offline.ts): everything a pod created on
// this node while etcd is away needs — its endpoint id, address lease and record, its ipcache entry,
// this node's claim on a known identity, its service backend ids and its Pod record — and nothing that
// needs the cluster to agree first (a new identity, a ClusterIP, a pod placed on another node).
import { ENDPOINTS_PREFIX } from './endpoints.ts';
import { leasePrefix } from './ipam.ts';
import { IP_PREFIX } from './ipcache-sync.ts';
import type { OfflineKeys } from './kvstore-offline.ts';
import { USERS_PREFIX } from '../identity/allocator.ts';
import { BACKEND_ID_PREFIX, FRONTEND_ID_PREFIX } from '../nat/services.ts';
import { RESOURCES_PREFIX } from './resources/manager.ts';
import { podRecordNode } from './resources/pods.ts';

const POD_RECORDS = `${RESOURCES_PREFIX}Pod/`;

/** users/<id>/<node>: this node's claim on an identity. */
function isClaimOf(key: string, node: string): boolean {
  if (!key.startsWith(USERS_PREFIX)) return false;
  const [id, holder, extra] = key.slice(USERS_PREFIX.length).split('/');
  return /^\d+$/.test(id) && holder === node && extra === undefined;
}

export function offlineKeys(node: string): OfflineKeys {
  return {
    owned: [`${ENDPOINTS_PREFIX}${node}/`, leasePrefix(node)],
    deferrable: (key, value) => key.startsWith(IP_PREFIX) || key.startsWith(BACKEND_ID_PREFIX) || key.startsWith(FRONTEND_ID_PREFIX) || isClaimOf(key, node)
      // A pod record waits only when the pod runs here; deleting an existing one needs the store.
      || (key.startsWith(POD_RECORDS) && value !== undefined && podRecordNode(value) === node),
  };
}
