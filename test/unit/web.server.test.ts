// The web page's server: endpoints over real HTTP with a fake flow ring, the bounded event stream,
// and a flow source that shows up after the server started.
import { describe, it, expect, afterEach, vi } from 'vitest';
import { request } from 'node:http';
import { EventEmitter } from 'node:events';
import type { Flow, FlowSource } from '../../src/observe/flow.ts';
import { parseListenAddress, startWebServer, renderPage, type WebServer } from '../../src/observe/web/server.ts';
import { SseClient } from '../../src/observe/web/sse.ts';

let seq = 0;
function flow(src: string, dst: string, verdict: Flow['verdict'] = 'FORWARDED'): Flow {
  seq++;
  const ep = (name: string, identity: number) => ({ identity, namespace: 'default', pod_name: name, labels: [`k8s:class=${name}`] });
  return {
    time: new Date(1_700_000_000_000 + seq).toISOString(), uuid: `u${seq}`, verdict,
    l4: { TCP: { source_port: 40000 + seq, destination_port: 80 } },
    source: ep(src, 300), destination: ep(dst, 301), Type: 'L3_L4', node_name: 'n', event_type: { type: 4 }, Summary: `flow ${seq}`,
  };
}

class FakeRing implements FlowSource {
  readonly flows: Flow[] = [];
  private readonly subs = new Set<(f: Flow) => void>();
  recent(n: number): Flow[] {
    return n <= 0 ? [] : this.flows.slice(-n);
  }
  onFlow(cb: (f: Flow) => void): () => void {
    this.subs.add(cb);
    return () => this.subs.delete(cb);
  }
  get subscribers(): number {
    return this.subs.size;
  }
  add(f: Flow): void {
    this.flows.push(f);
    for (const s of this.subs) s(f);
  }
}

function get(port: number, path: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    }).on('error', reject).end();
  });
}

/** Reads `count` SSE events (name + parsed data) from /api/events. */
function events(port: number, count: number, onOpen: () => void): Promise<Array<{ event: string; data: any }>> {
  return new Promise((resolve, reject) => {
    const out: Array<{ event: string; data: any }> = [];
    const req = request({ host: '127.0.0.1', port, path: '/api/events' }, (res) => {
      expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        buf += d;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const ev = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (ev && data) out.push({ event: ev, data: JSON.parse(data) });
          if (out.length === count) {
            req.destroy();
            resolve(out);
          }
        }
      });
      onOpen(); // the server registers the client before it answers: flows from now on reach it
    });
    req.on('error', (e) => (out.length === count ? undefined : reject(e)));
    req.end();
  });
}

describe('hubble ui server', () => {
  let srv: WebServer | undefined;
  afterEach(async () => {
    await srv?.close();
    srv = undefined;
  });

  it('parses listen addresses', () => {
    expect(parseListenAddress(':12000')).toEqual({ port: 12000 });
    expect(parseListenAddress('127.0.0.1:0')).toEqual({ host: '127.0.0.1', port: 0 });
    expect(parseListenAddress('[::1]:8080')).toEqual({ host: '::1', port: 8080 });
    expect(() => parseListenAddress('12000')).toThrow(/host:port/);
    expect(() => parseListenAddress(':99999')).toThrow(/out of range/);
  });

  it('the page is one self-contained document: style and script inline, no external assets', () => {
    const html = renderPage();
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain('<style>');
    expect(html).toContain("new EventSource('api/events')");
    expect(html).not.toMatch(/<(script|link)[^>]+(src|href)="(?!data:)/);
    expect(html).not.toContain('<!--SCRIPT-->');
  });

  it('serves the page, recent flows, the service map and status', async () => {
    const ring = new FakeRing();
    for (let i = 0; i < 5; i++) ring.add(flow('tiefighter', 'deathstar'));
    ring.add(flow('xwing', 'deathstar', 'DROPPED'));
    srv = await startWebServer({ address: '127.0.0.1:0', flows: () => ring });
    const page = await get(srv.port, '/');
    expect(page.status).toBe(200);
    expect(page.type).toMatch(/^text\/html/);
    expect(page.body).toContain('Service map');
    const last = await get(srv.port, '/api/flows?last=2');
    expect(JSON.parse(last.body).map((f: Flow) => f.Summary)).toEqual(ring.flows.slice(-2).map((f) => f.Summary));
    expect(JSON.parse((await get(srv.port, '/api/flows')).body)).toHaveLength(6);
    expect((await get(srv.port, '/api/flows?last=abc')).status).toBe(400);
    const map = JSON.parse((await get(srv.port, '/api/servicemap')).body);
    expect(map.nodes.map((x: any) => x.id)).toEqual(['default/deathstar', 'default/tiefighter', 'default/xwing']);
    expect(map.edges.map((e: any) => [e.id, e.verdicts])).toEqual([
      ['default/tiefighter->default/deathstar', { FORWARDED: 5 }],
      ['default/xwing->default/deathstar', { DROPPED: 1 }],
    ]);
    expect(JSON.parse((await get(srv.port, '/api/status')).body)).toEqual({ hubble: true, clients: 0 });
    expect((await get(srv.port, '/nope')).status).toBe(404);
  });

  it('streams new flows to every client over one subscription', async () => {
    const ring = new FakeRing();
    srv = await startWebServer({ address: '127.0.0.1:0', flows: () => ring });
    const port = srv.port;
    const a = flow('tiefighter', 'deathstar');
    const b = flow('xwing', 'deathstar', 'DROPPED');
    let opened = 0;
    const both = () => { if (++opened === 2) { ring.add(a); ring.add(b); } };
    const [one, two] = await Promise.all([events(port, 2, both), events(port, 2, both)]);
    expect(ring.subscribers).toBe(1);
    for (const got of [one, two]) expect(got.map((e) => [e.event, e.data.uuid])).toEqual([['flow', a.uuid], ['flow', b.uuid]]);
  });

  it('works without Hubble and subscribes once the source appears', async () => {
    let ring: FakeRing | undefined;
    srv = await startWebServer({ address: '127.0.0.1:0', flows: () => ring, pollMs: 20 });
    expect(JSON.parse((await get(srv.port, '/api/flows?last=5')).body)).toEqual([]);
    expect(JSON.parse((await get(srv.port, '/api/servicemap')).body)).toEqual({ nodes: [], edges: [], flows: 0 });
    expect(JSON.parse((await get(srv.port, '/api/status')).body).hubble).toBe(false);
    const f = flow('tiefighter', 'deathstar');
    const got = events(srv.port, 1, () => {
      ring = new FakeRing();
      // The flow goes in once the server has found the new source (it looks every pollMs).
      void vi.waitFor(() => expect(ring!.subscribers).toBe(1), { timeout: 2000, interval: 5 }).then(() => ring!.add(f));
    });
    expect((await got)[0].data.uuid).toBe(f.uuid);
  });

  it('close() ends open streams and frees the port', async () => {
    const ring = new FakeRing();
    srv = await startWebServer({ address: '127.0.0.1:0', flows: () => ring });
    const port = srv.port;
    let opened!: () => void;
    const open = new Promise<void>((r) => (opened = r));
    const ended = new Promise<void>((resolve) => {
      request({ host: '127.0.0.1', port, path: '/api/events' }, (res) => { opened(); res.resume(); res.on('close', () => resolve()); }).on('error', () => resolve()).end();
    });
    await open;
    await srv.close();
    srv = undefined;
    await ended;
    expect(ring.subscribers).toBe(0);
    await expect(get(port, '/')).rejects.toThrow();
  });
});

/** A socket that takes `room` writes, then reports a full buffer until drained. */
class SlowSink extends EventEmitter {
  readonly chunks: string[] = [];
  constructor(public room: number) { super(); }
  write(chunk: string): boolean {
    this.chunks.push(chunk);
    return --this.room > 0;
  }
  drain(room: number): void {
    this.room = room;
    this.emit('drain');
  }
  events(): Array<[string, any]> {
    return this.chunks.map((c) => [/^event: (.*)$/m.exec(c)![1], JSON.parse(/^data: (.*)$/m.exec(c)![1])]);
  }
}

describe('event stream backlog', () => {
  it('a lagging client keeps the newest `max` flows and is told how many it lost', () => {
    const sink = new SlowSink(1);
    const c = new SseClient(sink, 3);
    for (let i = 1; i <= 10; i++) c.push('flow', String(i));
    // Flow 1 went out before the buffer filled; 2..10 queued, 2..7 dropped for 8, 9, 10.
    expect(c.backlog).toBe(3);
    expect(c.lostTotal).toBe(6);
    sink.drain(100);
    expect(sink.events()).toEqual([['flow', 1], ['lost', { lost: 6 }], ['flow', 8], ['flow', 9], ['flow', 10]]);
    expect(c.backlog).toBe(0);
    c.push('flow', '11');
    expect(sink.events().at(-1)).toEqual(['flow', 11]);
  });

  it('a client that keeps up loses nothing', () => {
    const sink = new SlowSink(Infinity);
    const c = new SseClient(sink, 2);
    for (let i = 0; i < 1000; i++) c.push('flow', String(i));
    expect(c.lostTotal).toBe(0);
    expect(sink.chunks).toHaveLength(1000);
  });

  it('stays bounded over a long stall', () => {
    const sink = new SlowSink(1);
    const c = new SseClient(sink, 100);
    for (let i = 0; i < 100_000; i++) c.push('flow', String(i));
    expect(c.backlog).toBe(100);
    expect(c.lostTotal).toBe(100_000 - 1 - 100);
    sink.drain(Infinity);
    const ev = sink.events();
    expect(ev[1]).toEqual(['lost', { lost: 99_899 }]);
    expect(ev.slice(2).map((e) => e[1])).toEqual(Array.from({ length: 100 }, (_, i) => 99_900 + i));
  });
});
