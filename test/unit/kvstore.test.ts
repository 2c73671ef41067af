// LocalKVStore: semantics, persistence across reopen, and crash-safe writes.
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalKVStore, openKVStore } from '../../src/control/kvstore.ts';

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
    expect(JSON.parse(readFileSync(join(dir, 'kvstore.json'), 'utf8'))).toEqual({ kept: 'yes' });
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
});
