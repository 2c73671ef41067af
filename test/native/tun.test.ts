// Real TUN devices in throw-away namespaces: create, persist, re-attach, delete, namespace restore,
// and ping/TCP between two namespaces through the JS pair forwarder, offloads on and off.
import { describe, it, expect, afterAll, beforeAll } from 'vitest';
import { readlinkSync } from 'node:fs';
import { native } from '../../src/native/index.ts';
import { PairForwarder } from '../../src/native/pair-forwarder.ts';
import { requireRoot, makeNetns, removeAllNetns, nsPath, sh, nsExec, nsSpawn, run, stop, sleep } from '../helpers/sys.ts';

const root = requireRoot();
const ownNetns = () => readlinkSync('/proc/thread-self/ns/net');

describe.skipIf(!root)('TUN devices', () => {
  afterAll(removeAllNetns);

  it('creates a persistent device in a namespace, re-attaches to it, deletes it', () => {
    const ns = makeNetns();
    const before = ownNetns();
    const dev = native.tunOpen('eth0', nsPath(ns), true, true, true, true);
    expect(ownNetns()).toBe(before);
    expect(dev.ifindex).toBeGreaterThan(0);
    expect(dev.offloads & native.constants().TUN_F_TSO4).toBeTruthy();
    expect(native.ifindex('eth0', nsPath(ns))).toBe(dev.ifindex);
    native.setMtu('eth0', nsPath(ns), 1400);
    expect(native.getMtu('eth0', nsPath(ns))).toBe(1400);
    native.setLinkUp('eth0', nsPath(ns), true);
    sh('ip', ['-n', ns, 'addr', 'add', '10.201.0.5/32', 'dev', 'eth0']);
    native.closeFd(dev.fd);
    // Persistent: the device, its address and its MTU outlive the fd.
    expect(sh('ip', ['-n', ns, 'addr', 'show', 'eth0'])).toContain('10.201.0.5/32');
    const again = native.tunOpen('eth0', nsPath(ns), true, true, true, false);
    expect(again.ifindex).toBe(dev.ifindex);
    expect(native.getMtu('eth0', nsPath(ns))).toBe(1400);
    native.closeFd(again.fd);
    expect(native.tunDelete('eth0', nsPath(ns))).toBe(true);
    expect(native.ifindex('eth0', nsPath(ns))).toBe(0);
    expect(native.tunDelete('eth0', nsPath(ns))).toBe(false);
  });

  it('accepts a namespace fd as well as a path', async () => {
    const ns = makeNetns();
    const { openSync, closeSync } = await import('node:fs');
    const nsfd = openSync(nsPath(ns), 'r');
    const dev = native.tunOpen('tunfd0', nsfd, true, false, false, true);
    expect(native.ifindex('tunfd0', nsPath(ns))).toBe(dev.ifindex);
    native.closeFd(dev.fd);
    closeSync(nsfd);
    // Not persistent: gone with its last fd.
    expect(native.ifindex('tunfd0', nsPath(ns))).toBe(0);
  });

  it('restores the calling thread namespace when a step fails', () => {
    const ns = makeNetns();
    const before = ownNetns();
    expect(() => native.tunOpen('eth0', '/var/run/netns/does-not-exist', true, true, false, true)).toThrow(/open netns/);
    const dev = native.tunOpen('dup0', nsPath(ns), true, true, false, true);
    // Failing after entering the namespace (the name is taken) must still come back.
    expect(() => native.tunOpen('dup0', nsPath(ns), true, true, false, true)).toThrow(/TUNSETIFF/);
    expect(() => native.tunOpen('nope0', nsPath(ns), true, true, false, false)).toThrow(/no such device/);
    expect(() => native.setMtu('missing0', nsPath(ns), 1500)).toThrow();
    expect(ownNetns()).toBe(before);
    native.closeFd(dev.fd);
  });

  it('gives JS errors for wrong arguments, closed fds and short buffers', () => {
    const n = native as unknown as Record<string, (...a: unknown[]) => unknown>;
    expect(() => n.tunOpen(42)).toThrow(/name.*string/);
    expect(() => n.tunOpen('x'.repeat(20), null)).toThrow(/invalid interface name/);
    expect(() => n.tunOpen('ok0', {})).toThrow(/netns/);
    const pool = native.poolCreate(4, 64, 65600).pool;
    expect(() => n.readerStart(987654, pool, new Uint32Array(40 * 4), 4, true, 0, () => {})).toThrow(/fd 987654/);
    expect(() => n.readerStart(0, new Uint8Array(100), new Uint32Array(40), 1, true, 0, () => {})).toThrow(/pool.*handle/);
    expect(() => n.readerStart(0, pool, new Uint32Array(8), 1, true, 0, () => {})).toThrow(/meta/);
    expect(() => n.readerStart(0, pool, new Float64Array(40), 1, true, 0, () => {})).toThrow(/Int32Array or Uint32Array/);
    expect(() => n.readerStart(0, pool, new Uint32Array(40), 1, true, 0, 'cb')).toThrow(/function/);
    expect(() => n.udpReaderStart(0, native.poolCreate(1, 64, 1500).pool, new Uint32Array(40), 1, 0, 0, () => {})).toThrow(/datagram needs/);
    expect(() => n.poolCreate(1 << 20, 64, 65600)).toThrow(/slots/);
    expect(() => n.poolCreate(60000, 64, 65600)).toThrow(/exceed/);
    expect(() => n.poolRelease(pool, 0)).toThrow(/not held/);
    expect(() => n.poolHold(pool, 99)).toThrow(/not in this pool/);
    expect(() => n.parse(new Uint8Array(10), 0, 11, true, new Uint32Array(32), 0)).toThrow(/length/);
    expect(() => n.parse(new Uint8Array(10), 0, 10, true, new Uint32Array(32), 1)).toThrow(/meta too short/);
    expect(() => n.writeBatch(new Uint8Array(10), new Int32Array(4), 2)).toThrow(/count/);
    expect(() => n.mapFile('/nonexistent-dir/x', 4096)).toThrow(/open/);
    expect(() => n.readerStop({})).toThrow(/handle/);
    expect(() => n.readerStop(pool)).toThrow(/reader handle/);
    expect(() => n.closeFd(-1)).toThrow(/fd/);
    expect(() => n.setMtu('lo', null, 1.5)).toThrow(/integer/);
    // Writes to a closed fd are reported per packet, not thrown.
    const desc = new Int32Array([987654, 0, 10, 0]);
    expect(native.writeBatch(new Uint8Array(10), desc, 1)).toBe(0);
    expect(desc[3]).toBe(-9); // EBADF
  });
});

/** Two namespaces, each with a TUN eth0 (10.202.0.1 and .2), joined by a JS forwarder in this process. */
function twoPods(offloads: boolean) {
  const a = makeNetns('a');
  const b = makeNetns('b');
  const devA = native.tunOpen('eth0', nsPath(a), true, offloads, false, true);
  const devB = native.tunOpen('eth0', nsPath(b), true, offloads, false, true);
  for (const [ns, ip, peer] of [[a, '10.202.0.1', '10.202.0.2'], [b, '10.202.0.2', '10.202.0.1']]) {
    sh('ip', ['-n', ns, 'addr', 'add', `${ip}/32`, 'dev', 'eth0']);
    sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    sh('ip', ['-n', ns, 'route', 'add', `${peer}/32`, 'dev', 'eth0']);
  }
  return { a, b, devA, devB };
}

for (const mode of [
  { name: 'offloads on', offloads: true, segment: false },
  { name: 'offloads off', offloads: false, segment: false },
  { name: 'offloads on, super-packets segmented natively', offloads: true, segment: true },
]) {
  describe.skipIf(!root)(`two namespaces through the JS forwarder (${mode.name})`, () => {
    let pods: ReturnType<typeof twoPods>;
    let fwd: PairForwarder;
    beforeAll(() => {
      pods = twoPods(mode.offloads);
      fwd = new PairForwarder(pods.devA.fd, pods.devB.fd, { segment: mode.segment, mss: 1400 });
      fwd.start();
    });
    afterAll(() => {
      fwd?.stop();
      native.closeFd(pods.devA.fd);
      native.closeFd(pods.devB.fd);
      removeAllNetns();
    });

    it('ping works', async () => {
      const r = await run('ip', ['netns', 'exec', pods.a, 'ping', '-c', '3', '-i', '0.2', '-W', '2', '10.202.0.2']);
      expect(r.stdout).toContain('3 received');
    });

    it('a TCP transfer (iperf3) completes with the bytes it sent', async () => {
      const server = nsSpawn(pods.b, ['iperf3', '-s', '-1', '-B', '10.202.0.2']);
      try {
        await sleep(300);
        const r = await run('ip', ['netns', 'exec', pods.a, 'iperf3', '-c', '10.202.0.2', '-t', '2', '-J']);
        expect(r.code).toBe(0);
        const j = JSON.parse(r.stdout);
        expect(j.end.sum_received.bytes).toBeGreaterThan(1_000_000);
      } finally {
        await stop(server);
      }
      expect(fwd.errors).toBe(0);
      // With offloads the kernel hands over TCP super-packets (GSO); without them it never does.
      if (mode.offloads) expect(fwd.superPackets).toBeGreaterThan(0);
      else expect(fwd.superPackets).toBe(0);
    });
  });
}

// Silence unused warnings for helpers only some runs use.
void nsExec;
