// Cluster DNS (kube-dns replacement): server, wire format and upstream helpers.
export { ClusterDnsServer, type ClusterDnsOptions, type DnsLogger, type DnsQueryEvent, type DnsStats } from './server.ts';
export { answerLocal, type Zone } from './local.ts';
export { canonical, encodeName, inZone, readName, type WireName } from './names.ts';
export { parseUpstream, readResolvConf, upstreamsFromResolvConf, upstreamText, type Upstream } from './upstream.ts';
export * from './wire.ts';
