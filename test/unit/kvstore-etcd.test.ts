// EtcdKVStore against a private etcd member: semantics, watches, leases, outages and resync.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdKVStore } from '../../src/control/kvstore-etcd.ts';
import { etcdConnection } from '../../src/control/kvstore-etcd-options.ts';
import { openKVStore, type KVEvent, type KVStore } from '../../src/control/kvstore.ts';
import { IdentityAllocator } from '../../src/identity/allocator.ts';
import { EtcdMember, TcpRelay, freePort, makeTlsFiles } from '../helpers/etcd.ts';

const TTL = 2;

let etcd: EtcdMember;
const stores: KVStore[] = [];
beforeAll(async () => { etcd = await EtcdMember.start(); });
afterAll(async () => {
  for (const s of stores) await s.close();
  await etcd?.remove();
});

async function store(address = etcd.url): Promise<EtcdKVStore> {
  const s = await EtcdKVStore.open({ 'etcd.address': address });
  stores.push(s);
  return s;
}

/** Polls a condition with a deadline; returns the milliseconds it took. */
async function until(what: string, cond: () => boolean, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Date.now() - t0;
}

/** A watch that records events as text and keeps the view they add up to. */
function watcher(kv: KVStore, prefix: string) {
  const events: string[] = [];
  const view = new Map<string, string>();
  const w = kv.watch(prefix, (e: KVEvent) => {
    events.push(e.type === 'put' ? `put ${e.key}=${e.value}` : `delete ${e.key}`);
    if (e.type === 'put') view.set(e.key, e.value);
    else view.delete(e.key);
  });
  return { events, view, ready: w.ready, close: () => w.close() };
}

describe('EtcdKVStore', () => {
  it('gets, puts, deletes and lists by prefix in key order', async () => {
    const kv = await store();
    expect(kv.health().ok).toBe(true);
    expect(kv.health().message).toMatch(/^etcd: 1\/1 connected, leases=0: http:\/\/127\.0\.0\.1:\d+ - 3\.4\.\d+ \(Leader\)$/);
    expect(await kv.get('t1/none')).toBeUndefined();
    await kv.put('t1/nodes/k8s-w2', 'w2');
    await kv.put('t1/nodes/k8s-ctr', 'ctr');
    await kv.put('t1/nodes/k8s-w1', 'żółw "quoted"\n');
    await kv.put('t1/other', 'x');
    expect(await kv.get('t1/nodes/k8s-w1')).toBe('żółw "quoted"\n');
    expect(await kv.list('t1/nodes/')).toEqual([
      { key: 't1/nodes/k8s-ctr', value: 'ctr' },
      { key: 't1/nodes/k8s-w1', value: 'żółw "quoted"\n' },
      { key: 't1/nodes/k8s-w2', value: 'w2' },
    ]);
    expect(await kv.delete('t1/nodes/k8s-w2')).toBe(true);
    expect(await kv.delete('t1/nodes/k8s-w2')).toBe(false);
    expect((await kv.list('t1/')).map((p) => p.key)).toEqual(['t1/nodes/k8s-ctr', 't1/nodes/k8s-w1', 't1/other']);
    await expect(kv.put('', 'x')).rejects.toThrow(/non-empty/);
  });

  it('createOnly lets exactly one of many concurrent callers on two stores win', async () => {
    const [a, b] = [await store(), await store()];
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 ? a : b).createOnly('t2/ipam/172.20.0.5', `owner-${i}`)));
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await a.get('t2/ipam/172.20.0.5')).toBe(`owner-${results.indexOf(true)}`);
    expect(await b.createOnly('t2/ipam/172.20.0.5', 'late')).toBe(false);
  });

  it('watch delivers the present pairs, then every change under its prefix only, until closed', async () => {
    const [kv, other] = [await store(), await store()];
    await kv.put('t3/p/a', '1');
    await kv.put('t3/p/b', '2');
    await kv.put('t3/q/x', 'no');
    const w = watcher(kv, 't3/p/');
    await w.ready;
    expect(w.events).toEqual(['put t3/p/a=1', 'put t3/p/b=2']);
    await other.put('t3/p/c', '3');
    await other.put('t3/q/y', 'no');
    await kv.put('t3/p/a', '1b');
    await other.delete('t3/p/b');
    await until('the delete of t3/p/b', () => w.events.length === 5, 5000);
    expect(w.events).toEqual(['put t3/p/a=1', 'put t3/p/b=2', 'put t3/p/c=3', 'put t3/p/a=1b', 'delete t3/p/b']);
    w.close();
    const probe = watcher(kv, 't3/p/');
    await probe.ready;
    await kv.put('t3/p/after', 'close');
    await until('a second watcher to see the put', () => probe.view.has('t3/p/after'), 5000);
    expect(w.events).toHaveLength(5);
    probe.close();
  });

  it('a throwing watch handler gets a warning and later events, never a crash', async () => {
    const kv = await store();
    const seen: string[] = [];
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    const w = kv.watch('t9/', (e) => {
      seen.push(e.key);
      if (e.key === 't9/bad') throw new Error('handler bug');
    });
    await w.ready;
    await kv.put('t9/bad', '1');
    await kv.put('t9/good', '2');
    await until('the event after the throwing one', () => seen.includes('t9/good') && warnings.length > 0, 5000);
    expect(warnings[0]).toBe('kvstore watch handler for "t9/" threw on put t9/bad: handler bug');
    process.off('warning', onWarning);
    w.close();
  });

  it('leased keys vanish after the TTL when the holder stops, and at once on revoke', async () => {
    const [holder, observer] = [await store(), await store()];
    const lease = await holder.grantLease(TTL);
    expect(lease.id).toMatch(/^[0-9a-f]+$/);
    await holder.put('t4/nodes/k8s-w1', 'up', { lease });
    await holder.put('t4/kept', 'yes');
    const w = watcher(observer, 't4/');
    await w.ready;
    expect(holder.health().message).toMatch(/leases=1/);
    await holder.close();
    expect(await observer.get('t4/nodes/k8s-w1')).toBe('up');
    const ms = await until('the leased key to expire', () => !w.view.has('t4/nodes/k8s-w1'), (TTL + 3) * 1000);
    expect(ms).toBeGreaterThan(500);
    expect(await observer.get('t4/kept')).toBe('yes');

    const second = await observer.grantLease(30);
    await observer.put('t4/claims/256/k8s-ctr', '1', { lease: second });
    await observer.createOnly('t4/claims/257/k8s-ctr', '1', { lease: second });
    await second.revoke();
    expect(await observer.list('t4/claims/')).toEqual([]);
    await expect(observer.put('t4/x', '1', { lease: second })).rejects.toThrow(/revoked/);
    w.close();
  });

  it('gives the same identity for the same labels and different ones for different labels on two nodes', async () => {
    const ctr = new IdentityAllocator(await store(), 'k8s-ctr');
    const w1 = new IdentityAllocator(await store(), 'k8s-w1');
    const web = ['k8s:app=webpod', 'k8s:io.kubernetes.pod.namespace=default'];
    const curl = ['k8s:app=curl', 'k8s:io.kubernetes.pod.namespace=default'];
    const [a, b] = await Promise.all([ctr.acquire(web), w1.acquire(web)]);
    expect(a).toBe(b);
    const [c, d] = await Promise.all([ctr.acquire(curl), w1.acquire(['k8s:app=netpod', 'k8s:io.kubernetes.pod.namespace=default'])]);
    expect(new Set([a, c, d]).size).toBe(3);
    expect(await w1.acquire(curl)).toBe(c);
    expect(Math.min(a, c, d)).toBeGreaterThanOrEqual(256);
    ctr.close();
    w1.close();
  });

  it('reports an etcd that was never there, and rejects calls clearly within a bounded time', async () => {
    const port = await freePort();
    const kv = (await openKVStore('etcd', '', { 'etcd.address': `http://127.0.0.1:${port}` })) as EtcdKVStore;
    stores.push(kv);
    expect(kv.health()).toEqual({ ok: false, message: expect.stringMatching(new RegExp(`^kvstore etcd unreachable: 0/1 connected, leases=0: http://127.0.0.1:${port} - .*ECONNREFUSED`)) });
    const t0 = Date.now();
    await expect(kv.put('t6/a', '1')).rejects.toThrow(new RegExp(`^kvstore etcd unreachable at http://127.0.0.1:${port}: `));
    await expect(kv.grantLease(TTL)).rejects.toThrow(/kvstore etcd unreachable at/);
    expect(Date.now() - t0).toBeLessThan(8000);
  });
});

describe('EtcdKVStore outages', () => {
  it('works through the live endpoint when another one is down, and says so in health', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const kv = await store(`${dead},${etcd.url}`);
    expect(kv.health()).toEqual({ ok: true, message: expect.stringMatching(new RegExp(`^etcd: 1/2 connected, leases=0: ${dead} - 14 UNAVAILABLE: .*ECONNREFUSED[^;]*; ${etcd.url} - 3\\.4\\.\\d+ \\(Leader\\)$`)) });
    for (let i = 0; i < 6; i++) await kv.put(`t10/k${i}`, String(i));
    expect((await kv.list('t10/')).map((p) => p.value)).toEqual(['0', '1', '2', '3', '4', '5']);
  });

  it('a client cut off past its lease TTL resyncs its watch by difference and re-registers its node', async () => {
    const relay = await TcpRelay.start(etcd.clientPort);
    try {
      const [cut, other] = [await store(relay.url), await store()];
      await other.put('t7/cfg/same', 's');
      await other.put('t7/cfg/changed', 'old');
      await other.put('t7/cfg/gone', 'g');
      const w = watcher(cut, 't7/cfg/');
      await w.ready;
      const lease = await cut.grantLease(TTL);
      const leaseBefore = lease.id;
      await cut.put('t7/nodes/k8s-w1', 'ip=192.168.10.101', { lease });
      const nodes = watcher(other, 't7/nodes/');
      await nodes.ready;

      await relay.cut();
      const t0 = Date.now();
      const lossMs = await until('health to report the loss', () => !cut.health().ok, 5000);
      expect(cut.health().message).toMatch(/kvstore etcd unreachable/);
      const t1 = Date.now();
      await expect(cut.get('t7/cfg/same')).rejects.toThrow(new RegExp(`^kvstore etcd unreachable at ${relay.url}: `));
      const rejectMs = Date.now() - t1;
      await other.put('t7/cfg/new', 'n');
      await other.put('t7/cfg/changed', 'new');
      await other.delete('t7/cfg/gone');
      // etcd itself expires the lease nobody kept alive: the other node sees the registration go.
      await until('the cut-off node registration to expire', () => !nodes.view.has('t7/nodes/k8s-w1'), (TTL + 4) * 1000);
      const before = w.events.length;

      const outageMs = Date.now() - t0;
      await relay.restore();
      const [resyncMs, reregisterMs, healthMs] = await Promise.all([
        until('the watch to resync', () => w.view.get('t7/cfg/changed') === 'new' && !w.view.has('t7/cfg/gone') && w.view.has('t7/cfg/new'), 10_000),
        until('the node registration to be put again', () => nodes.view.get('t7/nodes/k8s-w1') === 'ip=192.168.10.101', 10_000),
        until('health ok again', () => cut.health().ok, 10_000),
      ]);
      expect(w.events.slice(before).sort()).toEqual(['delete t7/cfg/gone', 'put t7/cfg/changed=new', 'put t7/cfg/new=n']);
      expect(lease.id).toMatch(/^[0-9a-f]+$/);
      expect(lease.id).not.toBe(leaseBefore);
      console.log(`cut-off client: health loss ${lossMs} ms, call rejected in ${rejectMs} ms, outage ${outageMs} ms; after restore: watch resync ${resyncMs} ms, node re-registered ${reregisterMs} ms, health ok ${healthMs} ms`);
      w.close();
      nodes.close();
    } finally {
      await relay.cut();
    }
  });

  it('survives an etcd restart: health fails and calls reject, then the watch and the node registration come back', async () => {
    const [kv, other] = [await store(), await store()];
    await other.put('t8/cfg/a', '1');
    const w = watcher(kv, 't8/cfg/');
    await w.ready;
    const lease = await kv.grantLease(TTL);
    const leaseBefore = lease.id;
    await kv.put('t8/nodes/k8s-ctr', 'ip=192.168.10.100', { lease });

    const idle = await store();
    await etcd.stop();
    const t0 = Date.now();
    const lossMs = await until('health to report the loss', () => !kv.health().ok, 5000);
    // A store that makes no calls notices through its probe alone.
    const idleLossMs = await until('an idle store to report the loss', () => !idle.health().ok, 5000) + lossMs;
    expect(idle.health().message).toMatch(/^kvstore etcd unreachable: 0\/1 connected, leases=0: http:\/\/127\.0\.0\.1:\d+ - 14 UNAVAILABLE: .*ECONNREFUSED/);
    const t1 = Date.now();
    await expect(kv.list('t8/')).rejects.toThrow(/^kvstore etcd unreachable at http:\/\/127\.0\.0\.1:\d+: /);
    const rejectMs = Date.now() - t1;
    // Down for longer than twice the TTL: the client gives the lease up and must grant a new one.
    await new Promise((r) => setTimeout(r, 2 * TTL * 1000 + 500));

    await etcd.restart();
    const t2 = Date.now();
    await other.put('t8/cfg/b', '2');
    await other.delete('t8/cfg/a');
    const [convergeMs, healthMs] = await Promise.all([
      until('the watch to converge', () => w.view.has('t8/cfg/b') && !w.view.has('t8/cfg/a'), 15_000),
      until('health ok again', () => kv.health().ok, 15_000),
    ]);
    expect(await other.get('t8/nodes/k8s-ctr')).toBe('ip=192.168.10.100');
    expect(lease.id).not.toBe(leaseBefore);
    // The lease from before the outage runs out on the restarted member; the key now rides on the new one.
    const nodes = watcher(other, 't8/nodes/');
    await nodes.ready;
    // Nothing to wait for: the assertion is that no delete comes once the old lease's TTL has passed.
    await new Promise((r) => setTimeout(r, (TTL + 2) * 1000));
    expect(nodes.events).toEqual(['put t8/nodes/k8s-ctr=ip=192.168.10.100']);
    console.log(`etcd restart: health loss ${lossMs} ms (idle store ${idleLossMs} ms), call rejected in ${rejectMs} ms, outage ${t2 - t0} ms; after restart: watch converged ${convergeMs} ms, health ok ${healthMs} ms`);
    w.close();
    nodes.close();
  });
});

describe('EtcdKVStore over TLS', () => {
  it('connects with an etcd.config naming the CA, client key and certificate, and is refused without them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ciliary-etcdtls-'));
    let secure: EtcdMember | undefined;
    try {
      const tls = makeTlsFiles(dir);
      secure = await EtcdMember.start(tls);
      const cfg = join(dir, 'etcd.config');
      writeFileSync(cfg, `---\nendpoints:\n- ${secure.url}\ntrusted-ca-file: '${tls.ca}'\nkey-file: '${tls.clientKey}'\ncert-file: '${tls.clientCert}'\n`);
      const kv = (await openKVStore('etcd', '', { 'etcd.config': cfg })) as EtcdKVStore;
      stores.push(kv);
      expect(kv.health()).toEqual({ ok: true, message: expect.stringMatching(/^etcd: 1\/1 connected, leases=0: https:\/\/127\.0\.0\.1:\d+ - 3\.4\.\d+ \(Leader\)$/) });
      await kv.put('tls/a', 'secret');
      expect(await kv.list('tls/')).toEqual([{ key: 'tls/a', value: 'secret' }]);

      writeFileSync(cfg, `endpoints: [${secure.url}]\ntrusted-ca-file: '${tls.ca}'\n`);
      const anonymous = (await openKVStore('etcd', '', { 'etcd.config': cfg })) as EtcdKVStore;
      stores.push(anonymous);
      expect(anonymous.health().ok).toBe(false);
      await expect(anonymous.get('tls/a')).rejects.toThrow(/^kvstore etcd/);
    } finally {
      await secure?.remove();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('etcd options (kvstore-opt)', () => {
  it('takes comma-separated etcd.address with the default client port', () => {
    expect(etcdConnection({ 'etcd.address': 'http://192.168.10.100:2379, http://192.168.10.101' }).endpoints).toEqual(['http://192.168.10.100:2379', 'http://192.168.10.101:2379']);
  });

  it('reads Cilium etcd.config files with endpoints and TLS files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ciliary-etcdcfg-'));
    try {
      for (const f of ['ca.pem', 'client.key', 'client.crt']) writeFileSync(join(dir, f), `--- ${f} ---`);
      const cfg = join(dir, 'etcd.config');
      writeFileSync(cfg, `---\nendpoints:\n- https://192.168.0.1:2379\n- https://192.168.0.2:2379\ntrusted-ca-file: '${dir}/ca.pem'\nkey-file: '${dir}/client.key'\ncert-file: '${dir}/client.crt'\n`);
      const conn = etcdConnection({ 'etcd.config': cfg });
      expect(conn.endpoints).toEqual(['https://192.168.0.1:2379', 'https://192.168.0.2:2379']);
      expect(conn.credentials?.rootCertificate.toString()).toBe('--- ca.pem ---');
      expect(conn.credentials?.certChain?.toString()).toBe('--- client.crt ---');
      expect(etcdConnection({ 'etcd.config': cfg, 'etcd.address': 'https://10.0.0.1:2379' }).endpoints).toEqual(['https://10.0.0.1:2379']);
      writeFileSync(cfg, 'endpoints: [http://a:2379]\ntrusted-ca-file: /nonexistent/ca.pem\n');
      expect(() => etcdConnection({ 'etcd.config': cfg })).toThrow(/trusted-ca-file \/nonexistent\/ca\.pem: ENOENT/);
      writeFileSync(cfg, `endpoints: [http://a:2379]\ntrusted-ca-file: ${dir}/ca.pem\n`);
      expect(() => etcdConnection({ 'etcd.config': cfg })).toThrow(/TLS files given but the endpoints are http/);
      writeFileSync(cfg, 'endpoints: [http://a:2379]\ndial-timeout: 5s\n');
      expect(() => etcdConnection({ 'etcd.config': cfg })).toThrow(/unsupported key "dial-timeout"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses bad options with a clear error', () => {
    expect(() => etcdConnection({})).toThrow(/needs etcd.address/);
    expect(() => etcdConnection({ 'etcd.address': '192.168.10.100:2379' })).toThrow(/"192.168.10.100:2379" is not a URL \(expected http:\/\/host:port\)/);
    expect(() => etcdConnection({ 'etcd.address': 'unix:///run/etcd.sock' })).toThrow(/must be http:\/\/ or https:\/\//);
    expect(() => etcdConnection({ 'etcd.address': 'http://a:2379,https://b:2379' })).toThrow(/mix http/);
    expect(() => etcdConnection({ 'etcd.address': 'http://a:2379', 'etcd.qps': '10' })).toThrow(/kvstore-opt etcd.qps: unknown option/);
    expect(() => etcdConnection({ 'etcd.config': '/nonexistent/etcd.config' })).toThrow(/cannot read \/nonexistent\/etcd.config/);
  });
});
