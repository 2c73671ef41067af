// Conntrack entries that outlive their connection: a new SYN on a closed entry opens a new
// connection (Cilium's ct_entry_closing on ACTION_CREATE), an egress entry whose rev-NAT is not the
// packet's service is recreated (bpf_lxc's stale non-service entry), and a SYN on a closed service
// entry selects its backend again; both local ends of a closed connection close. Crafted packets
// through the whole datapath; the frames written to each pod's device and `bpf ct list` say what
// happened.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { native } from '../../src/native/index.ts';
import { injectPacket, plumbPod, tcpPacket } from '../helpers/datapath.ts';
import { MapRegistry } from '../../src/maps/index.ts';
import { Datapath } from '../../src/dataplane/datapath.ts';
import { ctListLines } from '../../src/maps/cilium/ct.ts';
import * as LB from '../../src/maps/cilium/lb.ts';
import type { MapDef } from '../../src/maps/cilium/types.ts';
import type { BpfMap } from '../../src/maps/types.ts';
import { ipv4String } from '../../src/maps/cilium/text.ts';
import { parseIPv4 } from '../../src/wire/ip-text.ts';

const A = 10;
const B = 20;
const C = 30;
const IPS: Record<number, string> = { [A]: '10.0.0.1', [B]: '10.0.0.2', [C]: '10.0.0.3' };
const VIP = '10.96.0.50';
const SYN = 0x02;
const ACK = 0x10;
const FIN_ACK = 0x11;
const SYN_ACK = 0x12;
const FRAME = 50; // tcpPacket: virtio-net header + IPv4 + TCP

describe('conntrack: reused tuples open new connections', () => {
  let dir: string;
  let dp: Datapath;
  const fds: Record<number, number> = {};

  const send = (from: number, to: string, sport: number, dport: number, flags: number) => injectPacket(dp, tcpPacket(parseIPv4(IPS[from]), parseIPv4(to), sport, dport, flags), from);
  /** The last frame written to a pod's device: `src:port -> dst:port`. */
  const lastTo = (ep: number): string => {
    const all = new Uint8Array(readFileSync(join(dir, `device-${ep}`)));
    if (all.length < FRAME) return 'nothing';
    const f = all.subarray(all.length - FRAME);
    const v = new DataView(f.buffer, f.byteOffset);
    return `${ipv4String(f, 10 + 12)}:${v.getUint16(30)} -> ${ipv4String(f, 10 + 16)}:${v.getUint16(32)}`;
  };
  /** A whole connection from A to `to`, answered by `server` (the backend behind it), closed by A. */
  const connectAndClose = (sport: number, to: string, dport: number, server: number, serverPort: number) => {
    const a = IPS[A];
    send(A, to, sport, dport, SYN);
    injectPacket(dp, tcpPacket(parseIPv4(IPS[server]), parseIPv4(a), serverPort, sport, SYN_ACK), server);
    send(A, to, sport, dport, ACK);
    send(A, to, sport, dport, FIN_ACK);
    injectPacket(dp, tcpPacket(parseIPv4(IPS[server]), parseIPv4(a), serverPort, sport, FIN_ACK), server);
    send(A, to, sport, dport, ACK);
  };
  const put = <K, V>(def: MapDef<K, V>, map: BpfMap, key: K, value: V) => {
    const k = new Uint8Array(def.keySize);
    const v = new Uint8Array(def.valueSize);
    def.encodeKey(key, k);
    def.encodeValue(value, v);
    expect(map.update(k, 0, v, 0, 0)).toBeGreaterThanOrEqual(0);
  };
  /** VIP:80 → the given backend ids (1 = B:80, 2 = C:80), rev-NAT index 7; `terminating` backends stay known. */
  const service = (active: number[], terminating: number[] = []) => {
    for (const [id, ep] of [[1, B], [2, C]]) {
      put(LB.lbBackendsDef, dp.lb.backends, { id }, { address: IPS[ep], port: 80, proto: LB.PROTO_TCP, state: terminating.includes(id) ? LB.BE_STATE_TERMINATING : LB.BE_STATE_ACTIVE });
    }
    active.forEach((id, i) => put(LB.lbServicesDef, dp.lb.services, { address: VIP, port: 80, slot: i + 1, proto: LB.PROTO_TCP, scope: 0 }, { backendId: id, count: 0, revNat: 7, flags: 0, flags2: 0 }));
    put(LB.lbServicesDef, dp.lb.services, { address: VIP, port: 80, slot: 0, proto: LB.PROTO_TCP, scope: 0 }, { backendId: 0, count: active.length, revNat: 7, flags: 0, flags2: 0 });
    put(LB.lbRevNatDef, dp.lb.revNatMap, { id: 7 }, { address: VIP, port: 80 });
  };
  const ct = () => ctListLines([dp.ct.tcp]);

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ciliary-ct-'));
    dp = new Datapath(new MapRegistry(dir, native.mapFile));
    for (const ep of [A, B, C]) {
      fds[ep] = openSync(join(dir, `device-${ep}`), 'w');
      expect(plumbPod(dp, ep, parseIPv4(IPS[ep]), fds[ep])).toBe(0);
    }
  });
  afterEach(() => {
    for (const fd of Object.values(fds)) closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  });

  it('a SYN through the ClusterIP on a port that just closed a direct connection to the backend is answered from the ClusterIP', () => {
    service([1]);
    connectAndClose(40000, IPS[B], 80, B, 80);
    expect(ct().find((l) => l.startsWith('TCP OUT 10.0.0.2:80 -> 10.0.0.1:40000 '))).toMatch(/\[ RxClosing TxClosing SeenNonSyn \] RevNAT=0 /);
    send(A, VIP, 40000, 80, SYN);
    expect(lastTo(B)).toBe('10.0.0.1:40000 -> 10.0.0.2:80');
    // The entry now belongs to the service connection: new rev-NAT, fresh flags and counters.
    expect(ct().find((l) => l.startsWith('TCP OUT 10.0.0.2:80 -> 10.0.0.1:40000 '))).toMatch(/TxPackets=1 .*TxFlagsSeen=0x02 .*\[ \] RevNAT=7 /);
    expect(ct().find((l) => l.startsWith('TCP IN 10.0.0.1:40000 -> 10.0.0.2:80 '))).toMatch(/TxPackets=1 .*TxFlagsSeen=0x02 .*\[ \] RevNAT=0 /);
    injectPacket(dp, tcpPacket(parseIPv4(IPS[B]), parseIPv4(IPS[A]), 80, 40000, SYN_ACK), B);
    expect(lastTo(A)).toBe(`${VIP}:80 -> 10.0.0.1:40000`);
  });

  it('and the reverse: a direct SYN on a port that closed a service connection gets the backend\'s own address back', () => {
    service([1]);
    connectAndClose(40001, VIP, 80, B, 80);
    send(A, IPS[B], 40001, 80, SYN);
    injectPacket(dp, tcpPacket(parseIPv4(IPS[B]), parseIPv4(IPS[A]), 80, 40001, SYN_ACK), B);
    expect(lastTo(A)).toBe('10.0.0.2:80 -> 10.0.0.1:40001');
    expect(ct().find((l) => l.startsWith('TCP OUT 10.0.0.2:80 -> 10.0.0.1:40001 '))).toMatch(/RevNAT=0 /);
  });

  it('a SYN on a closed service entry selects the backend again; an open one keeps its terminating backend', () => {
    service([1]);
    connectAndClose(40002, VIP, 80, B, 80);
    send(A, VIP, 40003, 80, SYN); // a second connection, still open
    expect(lastTo(B)).toBe('10.0.0.1:40003 -> 10.0.0.2:80');
    service([2], [1]); // B leaves the service but lives on: its open connections finish there
    send(A, VIP, 40003, 80, ACK);
    expect(lastTo(B)).toBe('10.0.0.1:40003 -> 10.0.0.2:80');
    send(A, VIP, 40002, 80, SYN);
    expect(lastTo(C)).toBe('10.0.0.1:40002 -> 10.0.0.3:80');
    expect(ct().find((l) => l.startsWith(`TCP OUT ${VIP}:80 -> 10.0.0.1:40002 service`))).toMatch(/\[ \] RevNAT=7 .*BackendID=2$/);
  });

  it('a SYN never stays on a terminating backend, even on a live service entry (Cilium drains, new connections move)', () => {
    service([1]);
    send(A, VIP, 40010, 80, SYN);
    expect(lastTo(B)).toBe('10.0.0.1:40010 -> 10.0.0.2:80');
    service([2], [1]);
    send(A, VIP, 40010, 80, SYN); // the SYN again, after B began terminating
    expect(lastTo(C)).toBe('10.0.0.1:40010 -> 10.0.0.3:80');
  });

  it('a retransmitted SYN or a SYN-ACK on a live or closing entry is no new connection', () => {
    send(A, IPS[B], 40004, 80, SYN);
    send(A, IPS[B], 40004, 80, SYN);
    expect(ct().find((l) => l.startsWith('TCP OUT 10.0.0.2:80 -> 10.0.0.1:40004 '))).toMatch(/TxPackets=2 /);
    send(A, IPS[B], 40004, 80, FIN_ACK);
    send(A, IPS[B], 40004, 80, SYN_ACK);
    expect(ct().find((l) => l.startsWith('TCP OUT 10.0.0.2:80 -> 10.0.0.1:40004 '))).toMatch(/TxPackets=4 .*\[ TxClosing SeenNonSyn \]/);
  });

  it('both entries of a closed connection between two local pods close (fin lifetime, not the established one)', () => {
    connectAndClose(40005, IPS[B], 80, B, 80);
    const lines = ct().filter((l) => l.includes(':40005 '));
    expect(lines).toHaveLength(2);
    const now = Number(/LastTxReport=(\d+)/.exec(lines[0])![1]);
    for (const l of lines) {
      expect(l).toMatch(/\[ RxClosing TxClosing SeenNonSyn \]/);
      expect(Number(/expires=(\d+)/.exec(l)![1]) - now, l).toBeLessThanOrEqual(dp.ct.timeouts.tcpFin);
    }
  });
});
