// Watch streams (`kubectl get -w`, informers): the current objects as ADDED (unless the client resumes
// from a resourceVersion), then each change the store reports as ADDED / MODIFIED / DELETED. One diff of
// the resource's list per store change serves stored and derived kinds alike.
import { canonical } from '../control/resources/convert.ts';
import type { KubeApi } from './api.ts';
import type { KubeObject } from './backend.ts';
import type { KubeResource } from './resources.ts';
import { selectObjects } from './selectors.ts';
import { toTable } from './tables.ts';

/** Pod process states (an exit, a restart) live in the agent, not the store: looked at this often. */
const LIVE_STATE_RESYNC_MS = 5000;

export interface WatchOptions {
  api: KubeApi;
  resource: KubeResource;
  namespace?: string;
  query: URLSearchParams;
  /** Table watches (kubectl get -w) carry each object as a one-row Table. */
  asTable: boolean;
  write(line: string): void;
}

const keyOf = (o: KubeObject) => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;

/** What a change is: the object without fields that move with the clock (a held lease's renewTime). */
function comparable(o: KubeObject): string {
  return canonical(o.kind === 'Lease' ? { ...o, spec: { ...(o.spec as object), renewTime: undefined } } : o);
}

/** Starts the stream; the returned function ends it. */
export function startWatch(w: WatchOptions): () => void {
  const { api, resource: r } = w;
  const ns = r.namespaced ? w.namespace : undefined;
  const labels = w.query.get('labelSelector') ?? undefined;
  const fields = w.query.get('fieldSelector') ?? undefined;
  const current = () => new Map(selectObjects(api.list(r, ns), labels, fields).map((o) => [keyOf(o), { o, text: comparable(o) }]));
  const emit = (type: string, o: KubeObject) => w.write(JSON.stringify({ type, object: w.asTable ? toTable(r.kind, [o], api.resourceVersion, false) : o }) + '\n');

  let last = current();
  const rv = w.query.get('resourceVersion');
  if (!rv || rv === '0') for (const { o } of last.values()) emit('ADDED', o);

  const diff = () => {
    const now = current();
    for (const [k, cur] of now) {
      const prev = last.get(k);
      if (!prev) emit('ADDED', cur.o);
      else if (prev.text !== cur.text) emit('MODIFIED', cur.o);
    }
    for (const [k, prev] of last) {
      if (now.has(k)) continue;
      // Deletes are immediate here: the last row shows the object terminating, as kubectl -w would see it.
      emit('DELETED', { ...prev.o, metadata: { ...prev.o.metadata, deletionTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z') } });
    }
    last = now;
  };
  // Changes that arrive together (an apply of many objects) make one diff.
  let queued = false;
  const onChange = () => {
    if (queued) return;
    queued = true;
    setImmediate(() => {
      queued = false;
      diff();
    });
  };
  const stop = api.backend.onChange(onChange);
  const resync = setInterval(diff, LIVE_STATE_RESYNC_MS);
  return () => {
    stop();
    clearInterval(resync);
  };
}
