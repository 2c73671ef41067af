// Identities: one number per label set, shared through the kvstore, freed after a grace period once
// no node uses it.
import { describe, it, expect, afterEach } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalKVStore } from '../../src/control/kvstore.ts';
import { IdentityAllocator, MIN_IDENTITY } from '../../src/identity/allocator.ts';

const dirs: string[] = [];
async function store(): Promise<LocalKVStore> {
  const d = mkdtempSync(join(tmpdir(), 'ciliary-id-'));
  dirs.push(d);
  return LocalKVStore.open(d);
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('identity allocator', () => {
  it('gives equal label sets one number from 256 up, and different sets different numbers', async () => {
    const a = new IdentityAllocator(await store(), 'n1', 20);
    const x = await a.acquire(['k8s:app=x']);
    expect(x).toBe(MIN_IDENTITY);
    expect(await a.acquire(['k8s:app=x'])).toBe(x);
    expect(await a.acquire(['k8s:app=y'])).toBe(x + 1);
  });

  it('frees an identity after the grace period once the last user goes, not before', async () => {
    const kv = await store();
    const a = new IdentityAllocator(kv, 'n1', 50);
    const x = await a.acquire(['k8s:app=x']);
    a.release(x);
    await sleep(10);
    expect(await a.acquire(['k8s:app=x'])).toBe(x); // back within the grace period: same number
    a.release(x);
    // Collected: gone from the store and, once its last delete is written, from the node's view.
    await expect.poll(async () => (await a.list()).map((i) => i.id), { timeout: 2000 }).not.toContain(x);
    await expect.poll(() => a.known.has(x), { timeout: 2000 }).toBe(false);
  });

  it('never frees an identity another node still uses', async () => {
    const kv = await store();
    const n1 = new IdentityAllocator(kv, 'n1', 20);
    const n2 = new IdentityAllocator(kv, 'n2', 20);
    const x = await n1.acquire(['k8s:app=x']);
    expect(await n2.acquire(['k8s:app=x'])).toBe(x);
    n1.release(x);
    await sleep(80); // past n1's grace period: had n1 been the only user, x would be gone now
    expect((await n1.list()).map((i) => i.id)).toContain(x);
    n2.release(x);
    await expect.poll(async () => (await n1.list()).map((i) => i.id), { timeout: 2000 }).not.toContain(x);
  });
});
