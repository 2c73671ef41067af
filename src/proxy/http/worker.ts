// The HTTP proxy worker: every HTTP redirect's listener runs on this thread, off the datapath's event
// loop. Map lookups go to the datapath thread (one round trip per connection); flow records go back
// in batches.
import { parentPort } from 'node:worker_threads';
import { HttpProxyListener, type ListenerDeps } from './listener.ts';
import type { Downstream, FromWorker, L7Event, ToWorker } from './messages.ts';

const port = parentPort!;
const post = (m: FromWorker) => port.postMessage(m);
const listeners = new Map<number, HttpProxyListener>();
const waiting = new Map<number, (v: never) => void>();
let nextId = 1;

function ask<T>(m: (id: number) => FromWorker): Promise<T> {
  const id = nextId++;
  return new Promise<T>((resolve) => {
    waiting.set(id, resolve as (v: never) => void);
    post(m(id));
  });
}

/** Flow records and released ports wait this long at most: one message (one wake-up of the datapath thread) per batch. */
const BATCH_MS = 10;
let events: L7Event[] = [];
let released: number[] = [];
let flushing = false;
function flush(): void {
  flushing = false;
  if (events.length) post({ t: 'events', events });
  if (released.length) post({ t: 'release', ports: released });
  events = [];
  released = [];
}
function later(): void {
  if (flushing) return;
  flushing = true;
  setTimeout(flush, BATCH_MS);
}

const deps = (routerIP: string): ListenerDeps => ({
  routerIP,
  accept: (client, clientPort) => ask<Downstream | undefined>((id) => ({ t: 'accept', id, client, clientPort })),
  upstreamPort: (client, clientPort) => ask<number>((id) => ({ t: 'upstream', id, client, clientPort })),
  release(p) {
    released.push(p);
    later();
  },
  onEvent(e) {
    events.push(e);
    later();
  },
  log: (level, msg, fields) => post({ t: 'log', level, msg, fields }),
});

port.on('message', (m: ToWorker) => {
  switch (m.t) {
    case 'open': {
      const l = new HttpProxyListener(m.port, m.rules, deps(m.routerIP));
      listeners.set(m.port, l);
      l.listen().then(() => post({ t: 'listening', port: m.port }), (err: Error) => {
        listeners.delete(m.port);
        post({ t: 'listening', port: m.port, error: err.message });
      });
      break;
    }
    case 'rules':
      listeners.get(m.port)?.setRules(m.rules);
      break;
    case 'close':
      listeners.get(m.port)?.close();
      listeners.delete(m.port);
      break;
    case 'accepted':
    case 'upstream': {
      const resolve = waiting.get(m.id);
      waiting.delete(m.id);
      resolve?.((m.t === 'accepted' ? m.downstream : m.port) as never);
      break;
    }
  }
});
