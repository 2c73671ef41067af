// L7 proxy events as `cilium monitor -v --type l7` prints them.
import type { MonitorEvent } from '../control/types.ts';
import type { L7Event } from '../proxy/http/listener.ts';
import { identityName } from '../dataplane/event-format.ts';

type Peer = { id: number; identity: number; labels: string[] };

const labelList = (p: Peer) => `[${p.labels.join(' ')}]`;

export function formatL7Event(e: L7Event, describe: (ip: string) => Peer): MonitorEvent {
  const client = describe(e.client.ip);
  const server = describe(e.server.ip);
  const verdict = e.verdict;
  const what = `${e.method} ${e.url}${e.status !== undefined ? ` => ${e.status}` : ''}`;
  const summary = e.type === 'request'
    ? `<- Request http from ${client.id} (${labelList(client)}) to ${server.id} (${labelList(server)}), identity ${identityName(client.identity)}->${identityName(server.identity)}, verdict ${verdict} ${what}`
    : `-> Response http to ${client.id} (${labelList(client)}) from ${server.id} (${labelList(server)}), identity ${identityName(server.identity)}->${identityName(client.identity)}, verdict ${verdict} ${what}`;
  return {
    type: 'l7',
    time: new Date().toISOString(),
    summary,
    verbose: summary,
    source: e.endpoint,
    srcIdentity: client.identity,
    dstIdentity: server.identity,
    l7: { ...e },
  };
}
