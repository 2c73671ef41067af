// `cilium bpf lb list [--revnat]` rows, decoded from the LB maps (API and CLI; not hot path).
import type { HashMap } from '../maps/index.ts';
import { u32ToIp } from '../dataplane/map-defs.ts';
import * as L from './lb-layout.ts';

function typeOf(flags: number): string {
  const kinds: string[] = [];
  if (flags & L.SVC_FLAG_NODEPORT) kinds.push('NodePort');
  if (flags & L.SVC_FLAG_EXTERNAL_IP) kinds.push('ExternalIP');
  if (flags & L.SVC_FLAG_LOADBALANCER) kinds.push('LoadBalancer');
  if (kinds.length === 0) kinds.push('ClusterIP');
  if (!(flags & L.SVC_FLAG_ROUTABLE)) kinds.push('non-routable');
  return kinds.join(', ');
}

export function lbListRows(services: HashMap, backends: HashMap, revNat: HashMap, showRevNat: boolean): Array<[string, string]> {
  if (showRevNat) {
    const rows: Array<[number, string]> = [];
    revNat.forEach((k, v) => {
      const id = revNat.view.getUint32(k, true);
      rows.push([id, `${u32ToIp(revNat.view.getUint32(v + L.RN_ADDRESS))}:${revNat.view.getUint16(v + L.RN_PORT)}`]);
    });
    return rows.sort((a, b) => a[0] - b[0]).map(([id, a]) => [String(id), a]);
  }
  const groups = new Map<string, Array<[number, string]>>();
  const sv = services.view;
  const bkey = new Uint8Array(4);
  services.forEach((k, v) => {
    // TCP frontends print as Cilium's older `ip:port`; other protocols carry their name.
    const proto = services.bytes[k + L.SK_PROTO];
    const frontend = `${u32ToIp(sv.getUint32(k + L.SK_ADDRESS))}:${sv.getUint16(k + L.SK_DPORT)}${proto === L.PROTO_TCP ? '' : `/${L.protoName(proto)}`}`;
    const slot = sv.getUint16(k + L.SK_SLOT, true);
    const revnat = sv.getUint16(v + L.SV_REV_NAT, true);
    let text: string;
    if (slot === 0) {
      text = `0.0.0.0:0 (${revnat}) [${typeOf(sv.getUint8(v + L.SV_FLAGS))}]`;
    } else {
      new DataView(bkey.buffer).setUint32(0, sv.getUint32(v + L.SV_BACKEND_ID, true), true);
      const off = backends.lookup(bkey, 0);
      const bv = backends.view;
      text = off < 0 ? `<missing backend> (${revnat})` : `${u32ToIp(bv.getUint32(off + L.BE_ADDRESS))}:${bv.getUint16(off + L.BE_PORT)} (${revnat})`;
    }
    const list = groups.get(frontend) ?? [];
    list.push([slot, text]);
    groups.set(frontend, list);
  });
  const rows: Array<[string, string]> = [];
  const order = [...groups.keys()].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  for (const fe of order) {
    const list = groups.get(fe)!.sort((a, b) => a[0] - b[0]);
    const [first, ...rest] = [list[0], ...list.slice(1).sort((a, b) => a[1].localeCompare(b[1], undefined, { numeric: true }))];
    rows.push([fe, first[1]]);
    for (const r of rest) rows.push(['', r[1]]);
  }
  return rows;
}
