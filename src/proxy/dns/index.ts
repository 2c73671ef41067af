// Cluster DNS: the server the CoreDNS workload runs, the DNS proxy for `rules: dns`, wire format and upstream helpers.
export { ClusterDnsServer, type ClusterDnsOptions, type DnsLogger, type DnsQueryEvent, type DnsStats } from './server.ts';
export { answerLocal, type Zone } from './local.ts';
export { canonical, encodeName, inZone, readName, type WireName } from './names.ts';
export { parseUpstream, readResolvConf, upstreamsFromResolvConf, upstreamText, type Upstream } from './upstream.ts';
export * from './wire.ts';
export { DnsProxyListener, type DnsL7Event } from './proxy.ts';
export { DnsResponseHooks, RESPONSE_MAX_DELAY_MS, type DnsResponseHandler, type DnsResponseInfo } from './hooks.ts';
export { compileDnsRules, type DnsMatcher } from './rules.ts';
