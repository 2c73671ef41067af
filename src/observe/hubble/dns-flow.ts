// The DNS part of an access-log flow, as Hubble's seven parser decodes Cilium's LogRecordDNS:
// flow.proto's DNS message and the summary (`DNS Query <name> A`, `DNS Answer "<ips>" TTL: 30 (Proxy <name> A)`).
import type { DnsL7Event } from '../../proxy/dns/proxy.ts';
import type { FlowDns } from '../flow.ts';
// gopacket's DNSResponseCode names, as Hubble prints a failed answer ("RCode: Non-Existent Domain").
import { RCODE_NAMES } from '../metrics/hubble/names.ts';

/** Field order as flow.proto's; zero values left out, as protojson prints them. */
export function dnsLayer(r: DnsL7Event): FlowDns {
  const d = r.dns;
  if (r.type === 'request') return { query: d.query, observation_source: 'proxy', qtypes: d.qtypes };
  return {
    query: d.query,
    ...(d.ips?.length ? { ips: d.ips } : {}),
    ...(d.ttl ? { ttl: d.ttl } : {}),
    ...(d.cnames?.length ? { cnames: d.cnames } : {}),
    observation_source: 'proxy',
    ...(d.rcode ? { rcode: d.rcode } : {}),
    qtypes: d.qtypes,
    ...(d.rrtypes?.length ? { rrtypes: d.rrtypes } : {}),
  };
}

export function dnsSummary(r: DnsL7Event): string {
  const d = r.dns;
  const qtypes = d.qtypes.join(',');
  if (r.type === 'request') return `DNS Query ${d.query} ${qtypes}`;
  const rcode = d.rcode ?? 0;
  let answer: string;
  if (rcode !== 0) answer = `RCode: ${RCODE_NAMES[rcode] ?? 'Unknown'}`;
  else {
    const parts: string[] = [];
    if (d.ips?.length) parts.push(JSON.stringify(d.ips.join(',')));
    if (d.cnames?.length) parts.push(`CNAMEs: ${JSON.stringify(d.cnames.join(','))}`);
    answer = parts.join(' ');
  }
  return `DNS Answer ${answer} TTL: ${d.ttl ?? 0} (Proxy ${d.query} ${qtypes})`;
}
