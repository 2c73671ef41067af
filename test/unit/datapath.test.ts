// The tail-call engine and hook programs on crafted packets, without devices: verdicts, drop
// reasons, the 33-call limit and missing slots, as cilium_metrics counts them.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdtempSync, openSync, closeSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { native } from '../../src/native/index.ts';
import { injectPacket, putLxc } from '../helpers/datapath.ts';
import { MapRegistry } from '../../src/maps/index.ts';
import { Datapath } from '../../src/dataplane/datapath.ts';
import { ENDPOINT_CALLS, PROGRAMS } from '../../src/dataplane/programs/index.ts';
import * as C from '../../src/dataplane/calls.ts';
import * as R from '../../src/dataplane/drop-reasons.ts';

const A = 10;
const B = 20;
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
  let devNull: number;

  const lxc = (ip: number, id: number) => expect(putLxc(dp, ip, id)).toBe(0);
  const inject = (pkt: Uint8Array, from: number) => injectPacket(dp, pkt, from);
  const drops = (reason: number) => dp.metricsSnapshot().filter((m) => m.reason === reason).reduce((s, m) => s + m.packets, 0);

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ciliary-dp-'));
    dp = new Datapath(new MapRegistry(dir, native.mapFile));
    devNull = openSync('/dev/null', 'w');
    for (const [id, ip] of [[A, IP_A], [B, IP_B]]) {
      dp.epIp[id] = ip;
      dp.epIdentity[id] = 300 + id;
      dp.epFd[id] = devNull;
      dp.installPrograms(id, ENDPOINT_CALLS);
      lxc(ip, id);
    }
  });
  afterEach(() => {
    closeSync(devNull);
    rmSync(dir, { recursive: true, force: true });
  });

  it('forwards pod to pod, decrementing the TTL with a valid checksum', () => {
    inject(ipv4Packet(IP_A, IP_B), A);
    expect(dp.totals().forwards).toBe(2); // counted leaving A (egress) and entering B (ingress), as Cilium counts
    expect(dp.arena[10 + 8]).toBe(63);
    expect(native.ipv4ChecksumOk(dp.arena, 10, 38)).toBe(true);
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
    dp.hostEp = 5;
    dp.hostFd = devNull;
    inject(ipv4Packet(IP_A, 0x08080808), A);
    expect(dp.totals().forwards).toBe(1);
    dp.hostFd = -1;
    inject(ipv4Packet(IP_A, 0x08080808), A);
    expect(drops(R.DROP_HOST_NOT_READY)).toBe(1);
  });
});
