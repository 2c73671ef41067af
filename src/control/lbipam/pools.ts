// CiliumLoadBalancerIPPool as LB-IPAM reads it: the usable address ranges of its blocks, its selector,
// and whether it conflicts with an older pool (overlapping blocks), as Cilium's operator decides.
import { formatIPv4, tryParseCidr, tryParseIPv4 } from '../../wire/ip-text.ts';
import type { LabelSelector } from '../resources/validate.ts';

/** Inclusive address range, as 32-bit numbers. */
export interface AddressRange {
  first: number;
  last: number;
}

export interface Pool {
  name: string;
  createdAt: string;
  ranges: AddressRange[];
  serviceSelector?: LabelSelector;
  disabled: boolean;
}

export interface PoolSpecManifest {
  blocks?: Array<{ cidr?: string; start?: string; stop?: string }>;
  /** The v2alpha1 name of `blocks` before Cilium 1.15. */
  cidrs?: Array<{ cidr?: string; start?: string; stop?: string }>;
  allowFirstLastIPs?: 'Yes' | 'No';
  serviceSelector?: LabelSelector;
  disabled?: boolean;
}

/** A validated pool manifest → its ranges; without allowFirstLastIPs "No" every address of a CIDR is usable (/31 and /32 always are). */
export function poolOf(name: string, createdAt: string, spec: PoolSpecManifest): Pool {
  const ranges: AddressRange[] = [];
  for (const b of spec.blocks ?? spec.cidrs ?? []) {
    if (b.cidr !== undefined) {
      const c = tryParseCidr(b.cidr)!;
      const reserve = spec.allowFirstLastIPs === 'No' && c.bits < 31 ? 1 : 0;
      ranges.push({ first: c.base + reserve, last: c.base + c.size - 1 - reserve });
    } else {
      const first = tryParseIPv4(b.start!)!;
      ranges.push({ first, last: tryParseIPv4(b.stop ?? b.start!)! });
    }
  }
  return { name, createdAt, ranges, ...(spec.serviceSelector ? { serviceSelector: spec.serviceSelector } : {}), disabled: spec.disabled === true };
}

export const rangeSize = (r: AddressRange): number => r.last - r.first + 1;
export const poolSize = (p: Pool): number => p.ranges.reduce((n, r) => n + rangeSize(r), 0);
export const poolContains = (p: Pool, ip: number): boolean => p.ranges.some((r) => ip >= r.first && ip <= r.last);
const overlaps = (a: AddressRange, b: AddressRange) => a.first <= b.last && b.first <= a.last;

/** Oldest first (name breaks ties): the order pools are tried in, and the older pool wins a conflict. */
export function byAge(pools: Pool[]): Pool[] {
  return [...pools].sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.name.localeCompare(b.name));
}

/**
 * Pool name → why it conflicts: its blocks overlap each other or a block of an older pool that does not
 * conflict itself. Cilium marks the pool added last and allocates nothing from it.
 */
export function conflicts(pools: Pool[]): Map<string, string> {
  const out = new Map<string, string>();
  const accepted: Pool[] = [];
  for (const p of byAge(pools)) {
    const self = p.ranges.findIndex((r, i) => p.ranges.some((o, j) => j < i && overlaps(r, o)));
    if (self >= 0) {
      out.set(p.name, `Pool has overlapping blocks: ${formatRange(p.ranges[self])}`);
      continue;
    }
    const other = accepted.find((o) => o.ranges.some((r) => p.ranges.some((x) => overlaps(r, x))));
    if (other) out.set(p.name, `Pool overlaps with CIDR of pool "${other.name}"`);
    else accepted.push(p);
  }
  return out;
}

const formatRange = (r: AddressRange) => (r.first === r.last ? formatIPv4(r.first) : `${formatIPv4(r.first)}-${formatIPv4(r.last)}`);

/** What `get ippools` and `-o yaml` show of a pool: Cilium's columns and conditions. */
export interface PoolStatus {
  disabled: boolean;
  conflicting: boolean;
  ipsTotal: number;
  ipsUsed: number;
  ipsAvailable: number;
  conditions: Array<{ type: string; status: 'True' | 'False' | 'Unknown'; reason?: string; message: string }>;
}

export function poolStatusOf(p: Pool, conflict: string | undefined, used: number): PoolStatus {
  const total = poolSize(p);
  return {
    disabled: p.disabled,
    conflicting: conflict !== undefined,
    ipsTotal: total,
    ipsUsed: used,
    ipsAvailable: conflict !== undefined ? 0 : total - used,
    conditions: [
      { type: 'cilium.io/PoolConflict', status: conflict ? 'True' : 'False', ...(conflict ? { reason: 'cidr_overlap' } : {}), message: conflict ?? '' },
      { type: 'cilium.io/IPsTotalCount', status: 'Unknown', message: String(total) },
      { type: 'cilium.io/IPsAvailableCount', status: 'Unknown', message: String(conflict !== undefined ? 0 : total - used) },
      { type: 'cilium.io/IPsUsedCount', status: 'Unknown', message: String(used) },
    ],
  };
}
