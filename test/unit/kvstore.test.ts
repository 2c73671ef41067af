// LocalKVStore: semantics, persistence across reopen, and crash-safe writes.
import { appendFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalKVStore, openKVStore } from '../../src/control/kvstore.ts';
import { readStoreFile } from '../../src/control/kvstore-file.ts';

let dir: string;
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'ciliary-kv-')); });
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('LocalKVStore', () => {
  it('gets, puts, deletes and lists by prefix in key order', async () => {
    const kv = await LocalKVStore.open(dir);
    expect(await kv.get('a')).toBeUndefined();
    await kv.put('cilium/state/nodes/v1/k8s-w1', 'w1');
    await kv.put('cilium/state/nodes/v1/k8s-ctr', 'ctr');
    await kv.put('cilium/state/identities/v1/id/256', 'k8s:app=x');
    expect(await kv.get('cilium/state/nodes/v1/k8s-w1')).toBe('w1');
    expect(await kv.list('cilium/state/nodes/')).toEqual([
      { key: 'cilium/state/nodes/v1/k8s-ctr', value: 'ctr' },
      { key: 'cilium/state/nodes/v1/k8s-w1', value: 'w1' },
    ]);
    expect(await kv.delete('cilium/state/nodes/v1/k8s-w1')).toBe(true);
    expect(await kv.delete('cilium/state/nodes/v1/k8s-w1')).toBe(false);
    expect((await kv.list('')).length).toBe(2);
    await kv.close();
  });

  it('createOnly wins once, also among concurrent callers', async () => {
    const kv = await LocalKVStore.open(dir);
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => kv.createOnly('ipam/172.20.0.5', `owner-${i}`)));
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await kv.get('ipam/172.20.0.5')).toBe(`owner-${results.indexOf(true)}`);
    expect(await kv.createOnly('ipam/172.20.0.5', 'late')).toBe(false);
    await kv.close();
  });

  it('keeps everything across reopen, including many concurrent writes', async () => {
    const kv = await LocalKVStore.open(dir);
    await Promise.all(Array.from({ length: 200 }, (_, i) => kv.put(`k/${String(i).padStart(3, '0')}`, `v${i}`)));
    await kv.put('unicode', 'żółw "quoted"\n');
    await kv.delete('k/000');
    await kv.close();
    const again = await LocalKVStore.open(dir);
    expect((await again.list('k/')).length).toBe(199);
    expect(await again.get('k/199')).toBe('v199');
    expect(await again.get('k/000')).toBeUndefined();
    expect(await again.get('unicode')).toBe('żółw "quoted"\n');
    await again.close();
    expect(JSON.parse(readFileSync(join(dir, 'kvstore.json'), 'utf8'))['k/001']).toBe('v1');
  });

  it('leaves no temp files behind and clears those of an interrupted write', async () => {
    writeFileSync(join(dir, 'kvstore.json.tmp-999-0'), '{"torn');
    const kv = await LocalKVStore.open(dir);
    await kv.put('a', '1');
    await kv.close();
    expect(readdirSync(dir)).toEqual(['kvstore.json']);
  });

  it('refuses a corrupt file rather than silently starting empty', async () => {
    writeFileSync(join(dir, 'kvstore.json'), '{"a": ');
    await expect(LocalKVStore.open(dir)).rejects.toThrow(/not valid JSON/);
    writeFileSync(join(dir, 'kvstore.json'), '{"a": 1}');
    await expect(LocalKVStore.open(dir)).rejects.toThrow(/value of "a" is not a string/);
  });

  it('rejects use after close and bad keys', async () => {
    const kv = await LocalKVStore.open(dir);
    await expect(kv.put('', 'x')).rejects.toThrow(/non-empty/);
    await expect(kv.put('a', 5 as unknown as string)).rejects.toThrow(/must be a string/);
    await kv.close();
    await expect(kv.get('a')).rejects.toThrow(/closed/);
  });

  it('openKVStore gives the local store for "" and local, and refuses etcd without an address', async () => {
    const kv = await openKVStore('local', join(dir, 'sub'));
    expect(kv).toBeInstanceOf(LocalKVStore);
    await kv.close();
    await expect(openKVStore('etcd', dir)).rejects.toThrow(/needs etcd.address/);
  });

  it('watch delivers the present pairs, then every change under its prefix', async () => {
    const kv = await LocalKVStore.open(dir);
    await kv.put('p/a', '1');
    await kv.put('q/x', 'no');
    const seen: string[] = [];
    const w = kv.watch('p/', (e) => seen.push(e.type === 'put' ? `put ${e.key}=${e.value}` : `delete ${e.key}`));
    await w.ready;
    await kv.put('p/b', '2');
    await kv.put('q/y', 'no');
    await kv.delete('p/a');
    w.close();
    await kv.put('p/c', 'after close');
    expect(seen).toEqual(['put p/a=1', 'put p/b=2', 'delete p/a']);
    await kv.close();
  });

  it('leased keys go with their lease and never reach the file', async () => {
    const kv = await LocalKVStore.open(dir);
    const lease = await kv.grantLease(15);
    await kv.put('nodes/me', 'up', { lease });
    await kv.put('kept', 'yes');
    expect(await kv.get('nodes/me')).toBe('up');
    expect(Object.fromEntries(readStoreFile(dir))).toEqual({ kept: 'yes' });
    const deleted: string[] = [];
    const w = kv.watch('nodes/', (e) => e.type === 'delete' && deleted.push(e.key));
    await w.ready;
    await lease.revoke();
    expect(await kv.get('nodes/me')).toBeUndefined();
    expect(deleted).toEqual(['nodes/me']);
    expect(kv.health().ok).toBe(true);
    await kv.close();
    expect(kv.health()).toEqual({ ok: false, message: 'closed' });
  });

  it('a change is on the disk when its put resolves, without a clean close (SIGKILL)', async () => {
    const kv = await LocalKVStore.open(dir);
    await kv.put('a', '1');
    await kv.put('b', '2');
    await kv.delete('a');
    // Never closed: what a killed agent leaves is the snapshot (none yet) and the log.
    expect(Object.fromEntries(readStoreFile(dir))).toEqual({ b: '2' });
    const again = await LocalKVStore.open(dir);
    expect(await again.list('')).toEqual([{ key: 'b', value: '2' }]);
    await again.close();
    await kv.close();
  });

  it('appends each change to the log and folds the log into the snapshot once it outgrows it', async () => {
    const big = 'x'.repeat(1000);
    const kv = await LocalKVStore.open(dir);
    await Promise.all(Array.from({ length: 2000 }, (_, i) => kv.put(`svc/${i}`, big)));
    for (let i = 0; i < 2000; i++) await kv.put(`svc/${i}`, `${big}${i}`);
    const log = statSync(join(dir, 'kvstore.log')).size;
    const snapshot = statSync(join(dir, 'kvstore.json')).size; // written by a compaction: no close yet
    expect(snapshot).toBeGreaterThan(2000 * 1000);
    expect(log).toBeLessThanOrEqual(Math.max(1 << 20, snapshot) + 1100);
    expect(readStoreFile(dir).get('svc/1999')).toBe(`${big}1999`);
    await kv.close();
    expect(readdirSync(dir)).toEqual(['kvstore.json']);
    expect((await LocalKVStore.open(dir).then(async (k) => { const v = await k.get('svc/7'); await k.close(); return v; }))).toBe(`${big}7`);
  });

  it('drops a torn last log line (a write cut short) and keeps appending after it', async () => {
    const kv = await LocalKVStore.open(dir);
    await kv.put('a', '1');
    appendFileSync(join(dir, 'kvstore.log'), '["b","tor');
    const again = await LocalKVStore.open(dir);
    expect(await again.list('')).toEqual([{ key: 'a', value: '1' }]);
    await again.put('c', '3');
    expect(Object.fromEntries(readStoreFile(dir))).toEqual({ a: '1', c: '3' });
    await again.close();
    await kv.close();
  });

  it('ignores a log that follows an older snapshot (a compaction cut after its rename)', async () => {
    writeFileSync(join(dir, 'kvstore.json'), '{"a": "new"}');
    writeFileSync(join(dir, 'kvstore.log'), '{"snapshot":"0000"}\n["a","old"]\n');
    const kv = await LocalKVStore.open(dir);
    expect(await kv.get('a')).toBe('new');
    await kv.close();
  });

  it('refuses a log line in the middle that is not a change', async () => {
    const kv = await LocalKVStore.open(dir);
    await kv.put('a', '1');
    appendFileSync(join(dir, 'kvstore.log'), '{"x":1}\n["b","2"]\n');
    await expect(LocalKVStore.open(dir)).rejects.toThrow(/kvstore.log line 3: expected/);
    await kv.close();
  });
});
