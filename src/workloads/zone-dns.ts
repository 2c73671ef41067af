// An authoritative DNS server for one zone from a fixed record list: the lab's outside-world DNS on
// the internet host (scripts/netns/outside.sh), the upstream the CoreDNS pods forward outside names
// to. It does not recurse: a name outside the zone is answered SERVFAIL (there is no upstream).
//   zone-dns --zone ciliary.test --records internet=203.0.113.10,www=203.0.113.10 [--ttl 30] [--port 53]
// One query-log line per query on stdout (who asked, what, the rcode), as CoreDNS's log plugin.
import { isIPv4 } from 'node:net';
import { ClusterDnsServer } from '../proxy/dns/server.ts';
import { canonical } from '../proxy/dns/names.ts';
import { exitOnSignals, flagValue } from './common.ts';

const argv = process.argv.slice(2);
const zone = canonical(flagValue(argv, 'zone') ?? '');
const ttl = Number(flagValue(argv, 'ttl') ?? 30);
const port = Number(flagValue(argv, 'port') ?? 53);
if (zone === '' || !Number.isInteger(ttl) || ttl < 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write('usage: zone-dns --zone ZONE --records NAME=IPV4,... [--ttl SECONDS] [--port PORT]\n');
  process.exit(2);
}

/** Relative names get the zone appended; `@` is the apex. */
const records = new Map<string, string[]>();
for (const entry of (flagValue(argv, 'records') ?? '').split(',').filter((s) => s !== '')) {
  const [rel, ip] = entry.split('=');
  if (!rel || !ip || !isIPv4(ip)) {
    process.stderr.write(`zone-dns: bad record ${JSON.stringify(entry)} (NAME=IPV4)\n`);
    process.exit(2);
  }
  const name = rel === '@' ? zone : canonical(`${rel}.${zone}`);
  records.set(name, [...(records.get(name) ?? []), ip]);
}

const server = new ClusterDnsServer({
  clusterDomain: zone,
  ttl,
  resolve: (name) => records.get(name),
  upstreams: [],
  onQuery: (q) => process.stdout.write(`[INFO] ${q.client} - "${q.type} IN ${q.name}. ${q.transport}" ${q.rcode}\n`),
});
await server.listen('0.0.0.0', port);
process.stdout.write(`zone ${zone}. on :${port}, ${records.size} names, TTL ${ttl}s\n`);
exitOnSignals(() => void server.close());
