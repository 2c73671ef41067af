// WriteBehindKVStore: while the store is away a node's own writes are applied locally and queued, the
// rest refused; once it answers the queue is written in order, each key's last write only.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KVUnreachableError, LocalKVStore, type KVStore } from '../../src/control/kvstore.ts';
import { QUEUE_FILE, WriteBehindKVStore } from '../../src/control/kvstore-offline.ts';

/** A store that can be cut off: every call then rejects as etcd's do, health says Failure. */
function cuttable(inner: KVStore): { store: KVStore; writes: string[]; down: (d: boolean) => void } {
  let isDown = false;
  const writes: string[] = [];
  const gate = <T>(fn: () => Promise<T>) => (isDown ? Promise.reject(new KVUnreachableError('kvstore etcd unreachable at test')) : fn());
  const store: KVStore = {
    get: (k) => gate(() => inner.get(k)),
    put: (k, v, o) => gate(() => (writes.push(`put ${k}=${v}`), inner.put(k, v, o))),
    delete: (k) => gate(() => (writes.push(`delete ${k}`), inner.delete(k))),
    list: (p) => gate(() => inner.list(p)),
    createOnly: (k, v, o) => gate(() => inner.createOnly(k, v, o)),
    watch: (p, cb) => inner.watch(p, cb),
    grantLease: (t) => inner.grantLease(t),
    health: () => (isDown ? { ok: false, message: 'kvstore etcd unreachable at test' } : inner.health()),
    close: () => inner.close(),
  };
  return { store, writes, down: (d) => (isDown = d) };
}

const keys = { owned: ['own/'], deferrable: (key: string) => key.startsWith('later/') };

describe('WriteBehindKVStore', () => {
  it('queues owned and deferrable writes while the store is away, refuses the rest, replays in order once back', async () => {
    const inner = LocalKVStore.inMemory();
    await inner.put('own/id/7', '1');
    const c = cuttable(inner);
    const kv = await WriteBehindKVStore.wrap(c.store, keys, () => undefined);
    c.down(true);
    // Owned keys: known here, so createOnly still tells taken from free.
    expect(await kv.createOnly('own/id/7', '1')).toBe(false);
    expect(await kv.createOnly('own/id/8', '1')).toBe(true);
    expect(await kv.createOnly('own/id/8', '1')).toBe(false);
    expect(await kv.get('own/id/8')).toBe('1');
    await kv.put('later/ip/172.20.1.9', 'a');
    await kv.put('own/pod', 'v1');
    await kv.put('later/ip/172.20.1.9', 'b');
    await expect(kv.put('cluster/service', 'x')).rejects.toThrow(/kvstore etcd unreachable/);
    await expect(kv.createOnly('cluster/id/256', 'x')).rejects.toThrow(/kvstore etcd unreachable/);
    expect(kv.queued).toBe(3);
    expect(kv.health()).toEqual({ ok: false, message: 'kvstore etcd unreachable at test; 3 write(s) queued for the store' });
    expect(await inner.get('own/id/8')).toBeUndefined();

    await kv.replay(); // still away: nothing written, nothing lost
    expect(c.writes).toEqual([]);
    c.down(false);
    await kv.replay();
    // Oldest first; the ip written twice goes once, with its last value, after the pod.
    expect(c.writes).toEqual(['put own/id/8=1', 'put own/pod=v1', 'put later/ip/172.20.1.9=b']);
    expect(kv.queued).toBe(0);
    expect(kv.health().ok).toBe(true);
    expect(await inner.get('later/ip/172.20.1.9')).toBe('b');
    await kv.close();
  });

  it('keeps later writes behind the queue, and a write created and removed offline replays as the removal', async () => {
    const c = cuttable(LocalKVStore.inMemory());
    const kv = await WriteBehindKVStore.wrap(c.store, keys, () => undefined);
    c.down(true);
    expect(await kv.createOnly('own/lease/172.20.1.5', 'pod-a')).toBe(true);
    await kv.put('own/pod-a', 'rec');
    expect(await kv.delete('own/pod-a')).toBe(true);
    c.down(false);
    // Back, but the queue is not written yet: a new owned write waits behind it, in order.
    await kv.put('own/pod-b', 'rec');
    expect(c.writes).toEqual([]);
    await kv.replay();
    expect(c.writes).toEqual(['put own/lease/172.20.1.5=pod-a', 'delete own/pod-a', 'put own/pod-b=rec']);
    // With the queue empty, writes go straight through.
    await kv.put('own/pod-c', 'rec');
    expect(c.writes.at(-1)).toBe('put own/pod-c=rec');
    expect(kv.queued).toBe(0);
    await kv.close();
  });

  it('a queued write the store refuses for good is reported and does not hold up the rest', async () => {
    const inner = LocalKVStore.inMemory();
    const c = cuttable(inner);
    const refused: string[] = [];
    const kv = await WriteBehindKVStore.wrap({ ...c.store, put: (k, v, o) => (k === 'later/bad' ? Promise.reject(new Error('lease revoked')) : c.store.put(k, v, o)) }, keys, (key, err) => refused.push(`${key}: ${err.message}`));
    c.down(true);
    await kv.put('later/bad', 'x');
    await kv.put('later/good', 'y');
    c.down(false);
    await kv.replay();
    expect(refused).toEqual(['later/bad: lease revoked']);
    expect(await inner.get('later/good')).toBe('y');
    expect(kv.queued).toBe(0);
    await kv.close();
  });

  it('an agent killed with writes queued writes their unleased part on its next start', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ciliary-kvq-'));
    try {
      const inner = LocalKVStore.inMemory();
      const c = cuttable(inner);
      const kv = await WriteBehindKVStore.wrap(c.store, keys, () => undefined, dir);
      const lease = await inner.grantLease(5);
      c.down(true);
      await kv.put('own/pod-a', 'rec');
      await kv.put('later/ip/172.20.1.9', 'a', { lease });
      expect(await kv.createOnly('own/lease/172.20.1.9', 'pod-a')).toBe(true);
      await kv.delete('own/pod-a');
      expect(JSON.parse(readFileSync(join(dir, QUEUE_FILE), 'utf8'))).toEqual([['own/lease/172.20.1.9', 'pod-a'], ['own/pod-a', null]]);
      // Killed here (never closed); the store is back for the next agent process.
      c.down(false);
      await inner.put('own/pod-a', 'stale');
      const next = await WriteBehindKVStore.wrap(c.store, keys, () => undefined, dir);
      expect(await inner.get('own/lease/172.20.1.9')).toBe('pod-a');
      expect(await inner.get('own/pod-a')).toBeUndefined();
      // The leased ipcache entry is the next process's to publish again.
      expect(await inner.get('later/ip/172.20.1.9')).toBeUndefined();
      expect(existsSync(join(dir, QUEUE_FILE))).toBe(false);
      expect(await next.createOnly('own/lease/172.20.1.9', 'pod-b')).toBe(false);
      await next.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
