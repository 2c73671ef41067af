// BPF masquerade on crafted packets through a real Datapath (no devices: files stand in for them):
// SNAT to the node IP with valid checksums, the same port for a flow's later packets, replies and
// ICMP errors translated back to the pod, echo ids, port collisions and exhaustion, a full map,
// the exclusion CIDR and ip-masq-agent, GC after conntrack; the ip-masq-agent file and the
// steering rules as text.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { native } from '../../src/native/index.ts';
import { injectPacket, plumbPod, tcpPacket } from '../helpers/datapath.ts';
import { MapRegistry } from '../../src/maps/index.ts';
import { Datapath, DEFAULT_DATAPATH_OPTIONS } from '../../src/dataplane/datapath.ts';
import { cil_from_host, HOST_CALLS } from '../../src/dataplane/programs/index.ts';
import * as R from '../../src/dataplane/drop-reasons.ts';
import { ipMasqDef, natListLines } from '../../src/maps/cilium/nat.ts';
import { parseIpMasqConfig, nonMasqueradeCidrs, DEFAULT_NON_MASQ_CIDRS } from '../../src/nat/ip-masq-agent.ts';
import { steeringRules } from '../../src/control/north-south-routing.ts';
import { monoSeconds } from '../../src/conntrack/clock.ts';
import { formatIPv4 } from '../../src/wire/ip-text.ts';
import { loadConfig } from '../../src/control/config.ts';

const A = 10;
const B = 11;
const HOST = 5;
const POD_A = 0xac140002; // 172.20.0.2
const POD_B = 0xac140003;
const NODE = 0xc0a80a64; // 192.168.10.100
const WORLD = 0xcb00710a; // 203.0.113.10
const WORLD2 = 0xcb00710b;

/** Frame: zeroed virtio-net header + IPv4 header (proto) + `l4` bytes, checksums set. */
function frame(src: number, dst: number, proto: number, l4: number[]): Uint8Array {
  const b = new Uint8Array(10 + 20 + l4.length);
  const v = new DataView(b.buffer);
  b[10] = 0x45;
  v.setUint16(12, 20 + l4.length);
  b[18] = 64;
  b[19] = proto;
  v.setUint32(22, src);
  v.setUint32(26, dst);
  b.set(l4, 30);
  native.setChecksums(b, 10, b.length);
  return b;
}
const be16 = (n: number) => [n >> 8, n & 0xff];
const udp = (src: number, dst: number, sport: number, dport: number) => frame(src, dst, 17, [...be16(sport), ...be16(dport), 0, 12, 0, 0, 1, 2, 3, 4]);
const echo = (src: number, dst: number, type: number, id: number) => frame(src, dst, 1, [type, 0, 0, 0, ...be16(id), 0, 1, 9, 9]);

describe('BPF masquerade (lib/nat.ts) in the datapath', () => {
  let dir: string;
  let dp: Datapath;
  const device: Record<number, { path: string; fd: number }> = {};
  const drops = (reason: number) => dp.metricsSnapshot().filter((m) => m.reason === reason).reduce((s, m) => s + m.packets, 0);
  /** The last frame written to a device (the file is emptied after each read). */
  const take = (id: number) => {
    const b = new Uint8Array(readFileSync(device[id].path));
    truncateSync(device[id].path);
    return b;
  };
  const u16 = (b: Uint8Array, at: number) => (b[at] << 8) | b[at + 1];
  const u32 = (b: Uint8Array, at: number) => new DataView(b.buffer, b.byteOffset).getUint32(at);

  function setup(natMax: number, ports: [number, number]): void {
    dir = mkdtempSync(join(tmpdir(), 'ciliary-nat-'));
    dp = new Datapath(new MapRegistry(dir, native.mapFile), { ...DEFAULT_DATAPATH_OPTIONS, ct: { tcp: 1024, any: 1024 }, natMax });
    for (const id of [A, B, HOST]) {
      const path = join(dir, `device-${id}`);
      device[id] = { path, fd: openSync(path, 'a') }; // appends: take() empties the file between packets
    }
    plumbPod(dp, A, POD_A, device[A].fd);
    plumbPod(dp, B, POD_B, device[B].fd);
    dp.hostEp = HOST;
    dp.hostFd = device[HOST].fd;
    dp.epFd[HOST] = device[HOST].fd;
    dp.hooks[HOST] = cil_from_host;
    dp.installPrograms(HOST, HOST_CALLS);
    dp.nat.configure({ nodeAddr: NODE, masqAddr: NODE, portMin: ports[0], portMax: ports[1], excludeBase: 0xac140000, excludeBits: 16, ipMasqAgent: true, tunnel: false });
  }

  beforeEach(() => setup(64, [61000, 65534]));
  afterEach(() => {
    for (const d of Object.values(device)) closeSync(d.fd);
    rmSync(dir, { recursive: true, force: true });
  });

  it('SNATs a pod\'s flow to the world to the node IP and a port of the range, the same for its later packets', () => {
    injectPacket(dp, tcpPacket(POD_A, WORLD, 40000, 80), A);
    const out = take(HOST);
    expect(formatIPv4(u32(out, 10 + 12))).toBe('192.168.10.100');
    const port = u16(out, 30);
    expect(port).toBeGreaterThanOrEqual(61000);
    expect(native.ipv4ChecksumOk(out, 10, out.length) && native.l4ChecksumOk(out, 10, out.length)).toBe(true);
    injectPacket(dp, tcpPacket(POD_A, WORLD, 40000, 80, 0x10), A);
    expect(u16(take(HOST), 30)).toBe(port);
    const lines = natListLines(dp.nat.map);
    expect(lines).toHaveLength(2);
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^TCP OUT 172\\.20\\.0\\.2:40000 -> 203\\.0\\.113\\.10:80 XLATE_SRC 192\\.168\\.10\\.100:${port} Created=0sec ago NeedsCT=1$`)));
    // The reply, steered into cilium_host, goes back to the pod with its own address and port.
    injectPacket(dp, tcpPacket(WORLD, NODE, 80, port, 0x12), HOST);
    const back = take(A);
    expect([formatIPv4(u32(back, 10 + 16)), u16(back, 32)]).toEqual(['172.20.0.2', 40000]);
    expect(native.ipv4ChecksumOk(back, 10, back.length) && native.l4ChecksumOk(back, 10, back.length)).toBe(true);
  });

  it('keeps the pod\'s address toward the exclusion CIDR and ip-masq-agent CIDRs; the node\'s own traffic goes on to its stack', () => {
    injectPacket(dp, udp(POD_A, 0xac140105, 5000, 53), A); // a pod on another node (native routing CIDR)
    expect(u32(take(HOST), 10 + 12)).toBe(POD_A);
    const key = new Uint8Array(ipMasqDef.keySize);
    ipMasqDef.encodeKey({ ip: '203.0.113.0', prefixLen: 24 }, key);
    dp.nat.ipMasq.update(key, 0, Uint8Array.of(1), 0);
    injectPacket(dp, udp(POD_A, WORLD, 5000, 53), A);
    expect(u32(take(HOST), 10 + 12)).toBe(POD_A);
    expect(dp.nat.map.count).toBe(0);
    // Steered but not a reply to a translation (no entry): back into the stack, untouched.
    const own = tcpPacket(WORLD, NODE, 80, 62000, 0x12);
    injectPacket(dp, own, HOST);
    expect(take(HOST)).toEqual(own);
  });

  it('two pods with the same port to one destination get different ports; exhausted ports drop with 167', () => {
    dp.nat.configure({ nodeAddr: NODE, masqAddr: NODE, portMin: 61000, portMax: 61001, excludeBase: 0, excludeBits: -1, ipMasqAgent: false, tunnel: false });
    injectPacket(dp, udp(POD_A, WORLD, 5000, 53), A);
    injectPacket(dp, udp(POD_B, WORLD, 5000, 53), B);
    const ports = natListLines(dp.nat.map).filter((l) => l.startsWith('UDP OUT')).map((l) => Number(/:(\d+) Created/.exec(l)![1])).sort();
    expect(ports).toEqual([61000, 61001]);
    injectPacket(dp, udp(POD_A, WORLD, 5001, 53), A);
    expect(drops(R.DROP_NAT_NO_MAPPING)).toBe(1);
    // Another destination has its own ports.
    injectPacket(dp, udp(POD_A, WORLD2, 5001, 53), A);
    expect(drops(R.DROP_NAT_NO_MAPPING)).toBe(1);
  });

  it('a full NAT map drops with 167, never evicting a live translation', () => {
    for (const d of Object.values(device)) closeSync(d.fd);
    rmSync(dir, { recursive: true, force: true });
    setup(4, [61000, 65534]);
    injectPacket(dp, udp(POD_A, WORLD, 5000, 53), A);
    injectPacket(dp, udp(POD_A, WORLD, 5001, 53), A);
    injectPacket(dp, udp(POD_A, WORLD, 5002, 53), A);
    expect(dp.nat.map.count).toBe(4);
    expect(drops(R.DROP_NAT_NO_MAPPING)).toBe(1);
  });

  it('translates ICMP echo ids both ways', () => {
    injectPacket(dp, echo(POD_A, WORLD, 8, 7), A);
    const out = take(HOST);
    const id = u16(out, 34);
    expect(id).toBeGreaterThanOrEqual(61000);
    expect(native.l4ChecksumOk(out, 10, out.length)).toBe(true);
    injectPacket(dp, echo(WORLD, NODE, 0, id), HOST);
    const back = take(A);
    expect([u32(back, 10 + 16), u16(back, 34)]).toEqual([POD_A, 7]);
    expect(native.l4ChecksumOk(back, 10, back.length)).toBe(true);
  });

  it('an ICMP error quoting a translated packet reaches the pod with the quote translated back', () => {
    injectPacket(dp, udp(POD_A, WORLD, 5000, 9999), A);
    const sent = take(HOST);
    const quoted = Array.from(sent.subarray(10, 10 + 28));
    injectPacket(dp, frame(WORLD, NODE, 1, [3, 3, 0, 0, 0, 0, 0, 0, ...quoted]), HOST);
    const err = take(A);
    expect(u32(err, 10 + 16)).toBe(POD_A); // outer destination
    const inner = 10 + 20 + 8;
    expect([u32(err, inner + 12), u16(err, inner + 20)]).toEqual([POD_A, 5000]);
    expect(native.ipv4ChecksumOk(err, inner, inner + 20)).toBe(true);
    expect(native.l4ChecksumOk(err, 10, err.length)).toBe(true);
  });

  it('an ICMP error the pod sends about a translated flow\'s reply leaves with the node\'s address and port in it', () => {
    injectPacket(dp, udp(POD_A, WORLD, 5000, 9999), A);
    const sent = take(HOST);
    const port = u16(sent, 10 + 20);
    injectPacket(dp, udp(WORLD, NODE, 9999, port), HOST);
    const reply = take(A);
    injectPacket(dp, frame(POD_A, WORLD, 1, [3, 3, 0, 0, 0, 0, 0, 0, ...Array.from(reply.subarray(10, 10 + 28))]), A);
    const err = take(HOST);
    expect(u32(err, 10 + 12)).toBe(NODE); // outer source
    const inner = 10 + 20 + 8;
    expect([u32(err, inner + 16), u16(err, inner + 22)]).toEqual([NODE, port]);
    expect(native.ipv4ChecksumOk(err, 10, 10 + 20)).toBe(true);
    expect(native.ipv4ChecksumOk(err, inner, inner + 20)).toBe(true);
    expect(native.l4ChecksumOk(err, 10, err.length)).toBe(true);
  });

  it('GC removes translations whose conntrack entry is gone, OUT first, then its IN twin', () => {
    injectPacket(dp, udp(POD_A, WORLD, 5000, 53), A);
    expect(dp.nat.map.count).toBe(2);
    dp.nat.gc(1024, dp.ct.tcp, dp.ct.any, monoSeconds());
    expect(dp.nat.map.count).toBe(2);
    dp.ct.flush();
    dp.nat.gc(1024, dp.ct.tcp, dp.ct.any, monoSeconds());
    dp.nat.gc(1024, dp.ct.tcp, dp.ct.any, monoSeconds());
    expect(dp.nat.map.count).toBe(0);
  });
});

describe('ip-masq-agent config and steering rules', () => {
  it('parses YAML and JSON; defaults when no CIDRs, link-local unless masqLinkLocal; clear errors', () => {
    expect(nonMasqueradeCidrs(parseIpMasqConfig('nonMasqueradeCIDRs:\n  - 203.0.113.0/24\nmasqLinkLocal: true\n'))).toEqual(['203.0.113.0/24']);
    expect(nonMasqueradeCidrs(parseIpMasqConfig('{"nonMasqueradeCIDRs": ["10.0.0.0/8"]}'))).toEqual(['10.0.0.0/8', '169.254.0.0/16']);
    expect(nonMasqueradeCidrs(parseIpMasqConfig(''))).toEqual([...DEFAULT_NON_MASQ_CIDRS, '169.254.0.0/16']);
    expect(() => parseIpMasqConfig('nonMasqueradeCIDRs: [10.0.0.1/8]')).toThrow('nonMasqueradeCIDRs[0]: "10.0.0.1/8" has host bits set');
    expect(() => parseIpMasqConfig('masqLinkLocal: yes please')).toThrow('masqLinkLocal');
    expect(() => parseIpMasqConfig('nonMasqCIDRs: []')).toThrow('unknown key "nonMasqCIDRs"');
  });

  it('masquerade-port-range stays above the NodePort range and below 65535, which ip rule cannot steer', () => {
    expect(loadConfig(['--masquerade-port-range', '40000-40009'])['masquerade-port-range']).toBe('40000-40009');
    for (const bad of ['30000-40000', '61000-65535', '62000-61000', 'many']) {
      expect(() => loadConfig(['--masquerade-port-range', bad])).toThrow(`masquerade-port-range: "${bad}" is not a port range MIN-MAX within 32768-65534`);
    }
  });

  it('steers the NAT and NodePort ranges, ICMP, externalIPs and hostPorts from the native device, the node\'s own NodePort connections', () => {
    const frontends = { addresses: ['10.77.0.10', '10.77.0.10'], hostPorts: [{ protocol: 'udp' as const, port: 8053 }, { protocol: 'tcp' as const, port: 8080 }] };
    expect(steeringRules({ device: 'eth1', natPorts: [61000, 65534], nodePorts: [30000, 32767], localAddrs: ['192.168.10.100'], frontends })).toEqual([
      'pref 20 iif eth1 ipproto tcp dport 61000-65534 lookup 2006 protocol 198',
      'pref 20 iif eth1 ipproto udp dport 61000-65534 lookup 2006 protocol 198',
      'pref 21 iif eth1 ipproto tcp dport 30000-32767 lookup 2006 protocol 198',
      'pref 21 iif eth1 ipproto udp dport 30000-32767 lookup 2006 protocol 198',
      'pref 22 iif eth1 ipproto icmp lookup 2006 protocol 198',
      'pref 21 iif lo to 192.168.10.100 ipproto tcp dport 30000-32767 lookup 2006 protocol 198',
      'pref 21 iif lo to 192.168.10.100 ipproto udp dport 30000-32767 lookup 2006 protocol 198',
      'pref 23 iif eth1 to 10.77.0.10 lookup 2006 protocol 198',
      'pref 23 iif eth1 to 192.168.10.100 ipproto tcp dport 8080 lookup 2006 protocol 198',
      'pref 23 iif eth1 to 192.168.10.100 ipproto udp dport 8053 lookup 2006 protocol 198',
    ]);
    expect(steeringRules({ device: 'eth1', natPorts: null, nodePorts: null, localAddrs: ['192.168.10.100'], frontends })).toEqual([]);
  });
});
