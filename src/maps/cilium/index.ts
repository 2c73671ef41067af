// The map catalog: every Cilium map ciliary pins, found by name (patterns for the per-endpoint
// maps), so the agent API and the CLI (reading pinned files with the agent stopped) decode any of
// them the same way.
import type { BpfMap, MapSpec } from '../types.ts';
import type { MapDef, MapEntryText } from './types.ts';
import { hexBytes } from './text.ts';
import { lxcDef, lxcSpec } from './lxc.ts';
import { ipcacheDef, ipcacheSpec } from './ipcache.ts';
import { metricsDef, metricsSpec } from './metrics.ts';
import { callsDef } from './calls.ts';
import { ctDef } from './ct.ts';
import { lbAffinityDef, lbBackendsDef, lbMaglevDef, lbRevNatDef, lbServicesDef } from './lb.ts';
import { policyDef } from './policy.ts';
import { proxyDef, proxyUpstreamDef } from './proxy.ts';
import { tunnelDef } from './tunnel.ts';
import { throttleDef, throttleSpec } from './throttle.ts';
import { ipMasqDef, natDef } from './nat.ts';

export type { MapDef, MapEntryText } from './types.ts';
export { specOf } from './types.ts';
export { callsSpec, callsMapName } from './calls.ts';

type AnyMapDef = MapDef<any, any>;

export const CATALOG: readonly AnyMapDef[] = [
  lxcDef, ipcacheDef, metricsDef, callsDef, ctDef,
  lbServicesDef, lbBackendsDef, lbRevNatDef, lbAffinityDef, lbMaglevDef,
  policyDef, proxyDef, proxyUpstreamDef, throttleDef, tunnelDef, natDef, ipMasqDef,
];

/** The catalog module describing the map pinned as `name`, or undefined for a map it does not know. */
export function mapDefOf(name: string): AnyMapDef | undefined {
  return CATALOG.find((d) => d.matches(name));
}

/** A `map get` entry, with the typed key and value it was decoded from (absent for unknown maps). */
export interface DecodedMapEntry extends MapEntryText {
  decoded?: { key: unknown; value: unknown };
}

export type EntryFormatter = (key: Uint8Array, value: Uint8Array) => DecodedMapEntry;

/** Generic hex form for maps the catalog does not know. */
export function formatHex(key: Uint8Array, value: Uint8Array): DecodedMapEntry {
  return { key: hexBytes(key), value: hexBytes(value) };
}

export function formatterFor(name: string): EntryFormatter {
  const def = mapDefOf(name);
  if (!def) return formatHex;
  return (key, value) => {
    const k = def.decodeKey(key);
    const v = def.decodeValue(value);
    return { ...def.format(k, v), decoded: { key: k, value: v } };
  };
}

/** Every entry of a map, decoded; array slots never written (all zero) are left out, as empty slots. */
export function dumpEntries(map: Pick<BpfMap, 'name' | 'type' | 'dump'>): DecodedMapEntry[] {
  const format = formatterFor(map.name);
  return map.dump().filter((e) => map.type !== 'array' || e.value.some((b) => b !== 0)).map((e) => format(e.key, e.value));
}

/** The node-wide maps the datapath opens with fixed sizes (the others take configured sizes). */
export function mapSpecs(): MapSpec[] {
  return [lxcSpec(), ipcacheSpec(), metricsSpec(), throttleSpec()];
}
