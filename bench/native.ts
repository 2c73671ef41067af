// npm run bench:native — the addon's raw speed: (a) kernel veth, (b) two TUNs + native-only forward
// loop, (c) the same TUNs with every batch handed to JS and written back. Prints JSON with ratios.
import { native } from '../src/native/index.ts';
import { PairForwarder } from '../src/native/pair-forwarder.ts';
import { vethPair, tunPair, tcpGbps, udpPps, cleanup, round } from './lib.ts';

async function measureVeth() {
  const { a, b } = vethPair();
  return { tcp: await tcpGbps(a, b), pps: await udpPps(a, b) };
}

async function measureNative() {
  const p = tunPair(true);
  const h = [native.forwardStart(p.devA.fd, p.devB.fd), native.forwardStart(p.devB.fd, p.devA.fd)];
  try {
    return { tcp: await tcpGbps(p.a, p.b), pps: await udpPps(p.a, p.b) };
  } finally {
    h.forEach((x) => native.readerStop(x));
    p.close();
  }
}

async function measureJs() {
  const p = tunPair(true);
  const fwd = new PairForwarder(p.devA.fd, p.devB.fd);
  fwd.start();
  try {
    return { tcp: await tcpGbps(p.a, p.b), pps: await udpPps(p.a, p.b) };
  } finally {
    fwd.stop();
    p.close();
  }
}

export async function benchNative() {
  const veth = await measureVeth();
  const nat = await measureNative();
  const js = await measureJs();
  return {
    veth_tcp_gbps: round(veth.tcp), veth_udp64_pps: Math.round(veth.pps),
    native_tcp_gbps: round(nat.tcp), native_udp64_pps: Math.round(nat.pps),
    js_tcp_gbps: round(js.tcp), js_udp64_pps: Math.round(js.pps),
    ratio_native_vs_kernel_tcp: round(nat.tcp / veth.tcp),
    ratio_js_vs_native_tcp: round(js.tcp / nat.tcp),
    ratio_js_vs_native_udp_pps: round(js.pps / nat.pps),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  benchNative()
    .then((r) => console.log(JSON.stringify(r, null, 2)))
    .finally(cleanup);
}
