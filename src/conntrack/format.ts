// `cilium bpf ct list global` lines for CT entries (CLI and API; not hot path).
import * as L from './layout.ts';
import { u32ToIp } from '../dataplane/map-defs.ts';

const PROTO: Record<number, string> = { 1: 'ICMP', 6: 'TCP', 17: 'UDP', 132: 'SCTP' };
const hex2 = (n: number) => `0x${n.toString(16).padStart(2, '0')}`;

export function formatCtEntry(key: Uint8Array, value: Uint8Array): string {
  const k = new DataView(key.buffer, key.byteOffset, key.byteLength);
  const v = new DataView(value.buffer, value.byteOffset, value.byteLength);
  const src = `${u32ToIp(k.getUint32(L.K_SADDR))}:${k.getUint16(L.K_SPORT)}`;
  const dst = `${u32ToIp(k.getUint32(L.K_DADDR))}:${k.getUint16(L.K_DPORT)}`;
  const tf = key[L.K_FLAGS];
  const dir = tf & L.TUPLE_F_IN ? 'IN' : 'OUT';
  // Cilium prints egress tuples from the far end, ingress tuples from the near one.
  const tuple = dir === 'OUT' ? `${dst} -> ${src}` : `${src} -> ${dst}`;
  const flags = v.getUint16(L.V_FLAGS, true);
  const names = L.CT_FLAG_NAMES.filter(([b]) => flags & b).map(([, n]) => n);
  const kind = [tf & L.TUPLE_F_SERVICE ? ' service' : '', tf & L.TUPLE_F_RELATED ? ' related' : ''].join('');
  return `${PROTO[key[L.K_NEXTHDR]] ?? `proto${key[L.K_NEXTHDR]}`} ${dir} ${tuple}${kind} expires=${v.getUint32(L.V_LIFETIME, true)}` +
    ` RxPackets=${v.getFloat64(L.V_RX_PACKETS, true)} RxBytes=${v.getFloat64(L.V_RX_BYTES, true)} RxFlagsSeen=${hex2(value[L.V_RX_FLAGS_SEEN])} LastRxReport=${v.getUint32(L.V_LAST_RX_REPORT, true)}` +
    ` TxPackets=${v.getFloat64(L.V_TX_PACKETS, true)} TxBytes=${v.getFloat64(L.V_TX_BYTES, true)} TxFlagsSeen=${hex2(value[L.V_TX_FLAGS_SEEN])} LastTxReport=${v.getUint32(L.V_LAST_TX_REPORT, true)}` +
    ` Flags=0x${flags.toString(16).padStart(4, '0')} [ ${names.join(' ')}${names.length ? ' ' : ''}] RevNAT=${v.getUint16(L.V_REV_NAT, true)}` +
    ` SourceSecurityID=${v.getUint32(L.V_SRC_SEC_ID, true)} IfIndex=${v.getUint16(L.V_IFINDEX, true)}` +
    (tf & L.TUPLE_F_SERVICE ? ` BackendID=${v.getUint32(L.V_BACKEND, true)}` : '');
}
