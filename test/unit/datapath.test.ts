// The tail-call engine and hook programs on crafted packets, without devices: verdicts, the device
// each packet is written to, drop reasons, the 33-call limit and missing slots, as cilium_metrics
// counts them; the match type of policy-verdict events.
import { describe, it, expect, beforeEach, afterEach, vi } from 'vitest';
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { native } from '../../src/native/index.ts';
import { injectPacket, plumbPod, tcpPacket } from '../helpers/datapath.ts';
import { MapRegistry } from '../../src/maps/index.ts';
import { Datapath } from '../../src/dataplane/datapath.ts';
import { ENDPOINT_CALLS, PROGRAMS } from '../../src/dataplane/programs/index.ts';
import * as C from '../../src/dataplane/calls.ts';
import * as R from '../../src/dataplane/drop-reasons.ts';
import * as M from '../../src/dataplane/vocab/policy-match.ts';
import * as P from '../../src/maps/cilium/policy.ts';
import { CTX_ACT_REDIRECT, DIR_INGRESS } from '../../src/dataplane/context.ts';
import { VERDICT_LOG_EGRESS, VERDICT_LOG_INGRESS } from '../../src/dataplane/lib/policy.ts';

const A = 10;
const B = 20;
const HOST = 5;
const IP_A = 0x0a000001;
const IP_B = 0x0a000002;

function ipv4Packet(src: number, dst: number, ttl = 64): Uint8Array {
  const b = new Uint8Array(10 + 28);
  const v = new DataView(b.buffer);
  b[10] = 0x45;
  v.setUint16(12, 28);
  b[18] = ttl;
  b[19] = 1; // ICMP
  v.setUint32(22, src);
  v.setUint32(26, dst);
  b[30] = 8; // echo request
  native.setChecksums(b, 10, b.length);
  return b;
}

describe('datapath engine', () => {
  let dir: string;
  let dp: Datapath;
  /** Each endpoint's "device": a file the datapath writes the frames it forwards into. */
  const device: Record<number, { path: string; fd: number }> = {};

  const inject = (pkt: Uint8Array, from: number) => injectPacket(dp, pkt, from);
  const drops = (reason: number) => dp.metricsSnapshot().filter((m) => m.reason === reason).reduce((s, m) => s + m.packets, 0);
  const written = (id: number) => new Uint8Array(readFileSync(device[id].path));

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ciliary-dp-'));
    dp = new Datapath(new MapRegistry(dir, native.mapFile));
    for (const id of [A, B, HOST]) {
      const path = join(dir, `device-${id}`);
      device[id] = { path, fd: openSync(path, 'w') };
    }
    for (const [id, ip] of [[A, IP_A], [B, IP_B]]) expect(plumbPod(dp, id, ip, device[id].fd)).toBe(0);
  });
  afterEach(() => {
    for (const d of Object.values(device)) closeSync(d.fd);
    rmSync(dir, { recursive: true, force: true });
  });

  it('forwards pod to pod into the destination\'s device, decrementing the TTL with a valid checksum', () => {
    const pkt = ipv4Packet(IP_A, IP_B);
    inject(pkt, A);
    expect(dp.totals().forwards).toBe(2); // counted leaving A (egress) and entering B (ingress), as Cilium counts
    const out = written(B);
    expect(out.length).toBe(pkt.length);
    expect(out[10 + 8]).toBe(63);
    expect(native.ipv4ChecksumOk(out, 10, out.length)).toBe(true);
    expect(out.subarray(10 + 12)).toEqual(pkt.subarray(10 + 12)); // addresses and payload untouched
    expect(written(A).length).toBe(0);
  });

  it('drops with Cilium reasons: spoofed source, TTL, IPv6, malformed', () => {
    inject(ipv4Packet(0x0a0000ff, IP_B), A);
    expect(drops(R.DROP_INVALID_SIP)).toBe(1);
    inject(ipv4Packet(IP_A, IP_B, 1), A);
    expect(drops(R.DROP_TTL_EXCEEDED)).toBe(1);
    const v6 = new Uint8Array(10 + 40);
    v6[10] = 0x60;
    inject(v6, A);
    expect(drops(R.DROP_UNKNOWN_L3)).toBe(1);
    const bad = ipv4Packet(IP_A, IP_B);
    bad[10] = 0x42; // IHL 2
    inject(bad, A);
    expect(drops(R.DROP_INVALID)).toBe(1);
    expect(dp.totals().forwards).toBe(0);
    expect(written(B).length).toBe(0);
  });

  it('drops what arrives on a device without a hook', () => {
    dp.detach(A); // no reader was started: only the hook goes
    inject(ipv4Packet(IP_A, IP_B), A);
    expect(drops(R.DROP_UNROUTABLE)).toBe(1);
    expect(written(B).length).toBe(0);
  });

  it('runs whatever hook a device is attached with (how overlay and netdev hooks slot in)', () => {
    const TUNNEL = 30;
    dp.hooks[TUNNEL] = (ctx, d) => {
      ctx.direction = DIR_INGRESS;
      ctx.dstEp = B;
      ctx.outFd = d.epFd[B];
      return CTX_ACT_REDIRECT;
    };
    const pkt = ipv4Packet(0x0a010001, IP_B);
    inject(pkt, TUNNEL);
    expect(written(B)).toEqual(pkt);
    expect(dp.totals().forwards).toBe(1); // counted entering B only: no endpoint sent it
  });

  it('drops with DROP_MISSED_TAIL_CALL when the destination has no program in the slot', () => {
    dp.installPrograms(B, ENDPOINT_CALLS.filter(([slot]) => slot !== C.CILIUM_CALL_IPV4_TO_ENDPOINT));
    inject(ipv4Packet(IP_A, IP_B), A);
    expect(drops(R.DROP_MISSED_TAIL_CALL)).toBe(1);
  });

  it('stops a chain after 33 tail calls', () => {
    // Point FROM_LXC_CONT back at FROM_LXC: the chain would never end.
    const calls = dp.calls[A]!;
    const loop = PROGRAMS.findIndex((p) => p === ENDPOINT_CALLS[0][1]) + 1;
    calls.view.setUint32(calls.lookupIndex(C.CILIUM_CALL_IPV4_FROM_LXC_CONT), loop, true);
    let calls0 = 0;
    const orig = dp.tailCall.bind(dp);
    dp.tailCall = (ctx, slot) => {
      calls0 = ctx.tailCalls + 1;
      return orig(ctx, slot);
    };
    inject(ipv4Packet(IP_A, IP_B), A);
    expect(drops(R.DROP_MISSED_TAIL_CALL)).toBe(1);
    expect(calls0).toBe(C.MAX_TAIL_CALLS + 1);
  });

  it('sends traffic for the world to the stack through cilium_host', () => {
    dp.hostEp = HOST;
    dp.hostFd = device[HOST].fd;
    const pkt = ipv4Packet(IP_A, 0x08080808);
    inject(pkt, A);
    expect(dp.totals().forwards).toBe(1);
    expect(written(HOST)).toEqual(pkt); // not routed between pods: the TTL is the stack's to decrement
    dp.hostFd = -1;
    inject(ipv4Packet(IP_A, 0x08080808), A);
    expect(drops(R.DROP_HOST_NOT_READY)).toBe(1);
    expect(written(HOST).length).toBe(pkt.length);
  });

  describe('policy-verdict match types, numbered as Cilium\'s POLICY_MATCH_*', () => {
    const PEER = 300 + A; // A's identity, as plumbPod gives it
    type Allow = { identity: number; protocol: number; port: number; portPrefixLen: number };
    const cases: Array<[string, Allow, number]> = [
      ['identity only (any protocol, any port)', { identity: PEER, protocol: 0, port: 0, portPrefixLen: 0 }, M.POLICY_MATCH_L3_ONLY],
      ['identity, protocol and port', { identity: PEER, protocol: 6, port: 80, portPrefixLen: 16 }, M.POLICY_MATCH_L3_L4],
      ['identity and a port on any protocol', { identity: PEER, protocol: 0, port: 80, portPrefixLen: 16 }, M.POLICY_MATCH_L3_L4],
      ['identity and protocol, any port', { identity: PEER, protocol: 6, port: 0, portPrefixLen: 0 }, M.POLICY_MATCH_L3_PROTO],
      ['any identity, protocol and port', { identity: 0, protocol: 6, port: 80, portPrefixLen: 16 }, M.POLICY_MATCH_L4_ONLY],
      ['any identity, protocol, any port', { identity: 0, protocol: 6, port: 0, portPrefixLen: 0 }, M.POLICY_MATCH_PROTO_ONLY],
      ['allow all', { identity: 0, protocol: 0, port: 0, portPrefixLen: 0 }, M.POLICY_MATCH_ALL],
    ];

    it.each(cases)('%s', (_name, allow, match) => {
      dp.verdictLogFilter[B] = VERDICT_LOG_INGRESS; // B's ingress enforced
      const map = dp.installPolicyMap(B, 16);
      const key = new Uint8Array(P.POLICY_KEY_SIZE);
      const value = new Uint8Array(P.POLICY_VALUE_SIZE);
      P.encodeKey({ ...allow, egress: false }, key);
      P.encodeValue({ deny: false, proxyPort: 0 }, value);
      expect(map.update(key, 0, value, 0, 0)).toBe(0);
      const verdicts = vi.spyOn(dp.events, 'emitVerdict');
      inject(tcpPacket(IP_A, IP_B, 40000, 80), A);
      // (ctx, egress, match, reason, endpoint, peer): B's ingress allowed A's SYN with this match.
      expect(verdicts.mock.calls.map((c) => c.slice(1))).toEqual([[false, match, 0, B, PEER]]);
      expect(written(B).length).toBe(50);
    });

    it('no allow: match none, dropped with 133', () => {
      dp.verdictLogFilter[B] = VERDICT_LOG_INGRESS;
      dp.installPolicyMap(B, 16);
      const verdicts = vi.spyOn(dp.events, 'emitVerdict');
      inject(tcpPacket(IP_A, IP_B, 40000, 80), A);
      expect(verdicts.mock.calls.map((c) => c.slice(1))).toEqual([[false, M.POLICY_MATCH_NONE, R.DROP_POLICY, B, PEER]]);
      expect(written(B).length).toBe(0);
    });

    it('a direction without enforcement reports no verdict (Cilium\'s POLICY_VERDICT_LOG_FILTER), though the packet is decided the same', () => {
      dp.verdictLogFilter[B] = VERDICT_LOG_EGRESS; // only B's egress enforced
      dp.installPolicyMap(B, 16);
      const verdicts = vi.spyOn(dp.events, 'emitVerdict');
      inject(tcpPacket(IP_A, IP_B, 40000, 80), A);
      expect(verdicts).not.toHaveBeenCalled();
      expect(drops(R.DROP_POLICY)).toBe(1);
    });
  });
});
