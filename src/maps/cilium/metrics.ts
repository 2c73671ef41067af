// cilium_metrics: packet and byte counters per (reason, direction), `bpf metrics list`.
import { dropReasonText } from '../../dataplane/drop-reasons.ts';
import { formatTable } from '../../cli/table.ts';
import { specOf, viewOf, type MapDef, type MapEntryText } from './types.ts';

export const METRICS_MAP = 'cilium_metrics';

/** Array index = reason << 2 | direction (1 ingress, 2 egress); reason 0 = forwarded. */
export const METRICS_ENTRIES = 1024;
/** Value: {packets f64 LE, bytes f64 LE}. */
export const METRICS_PACKETS = 0;
export const METRICS_BYTES = 8;
export const METRICS_VALUE = 16;

/** Cilium's metric directions (METRIC_INGRESS, METRIC_EGRESS, METRIC_SERVICE) as `bpf metrics list` names them. */
const DIRECTION_NAMES = ['UNKNOWN', 'INGRESS', 'EGRESS', 'SERVICE'];

export interface MetricsKey {
  reason: number;
  direction: number;
}

export interface MetricsValue {
  packets: number;
  bytes: number;
}

export const metricsIndex = (k: MetricsKey): number => ((k.reason & 0xff) << 2) | (k.direction & 3);
const directionName = (d: number) => DIRECTION_NAMES[d & 3];

export function formatMetricsEntry(k: MetricsKey, v: MetricsValue): MapEntryText {
  return { key: `reason=${k.reason} (${dropReasonText(k.reason)}) direction=${directionName(k.direction)}`, value: `packets=${v.packets} bytes=${v.bytes}` };
}

export const metricsDef: MapDef<MetricsKey, MetricsValue> = {
  name: METRICS_MAP,
  matches: (n) => n === METRICS_MAP,
  type: 'array',
  keySize: 4,
  valueSize: METRICS_VALUE,
  maxEntries: METRICS_ENTRIES,
  decodeKey(b) {
    const i = viewOf(b).getUint32(0, true);
    return { reason: i >> 2, direction: i & 3 };
  },
  decodeValue(b) {
    const v = viewOf(b);
    return { packets: v.getFloat64(METRICS_PACKETS, true), bytes: v.getFloat64(METRICS_BYTES, true) };
  },
  encodeKey: (k, out) => viewOf(out).setUint32(0, metricsIndex(k), true),
  encodeValue(x, out) {
    const v = viewOf(out);
    v.setFloat64(METRICS_PACKETS, x.packets, true);
    v.setFloat64(METRICS_BYTES, x.bytes, true);
  },
  format: formatMetricsEntry,
};

export const metricsSpec = () => specOf(metricsDef, METRICS_ENTRIES);

/**
 * `cilium bpf metrics list`: REASON DIRECTION PACKETS BYTES LINE FILE, counters that moved only.
 * ciliary's key has no source location, so LINE and FILE print as Cilium's unknown-file fallback.
 */
export function formatMetricsList(entries: ReadonlyArray<{ key: MetricsKey; value: MetricsValue }>): string {
  const rows = entries
    .filter((e) => e.value.packets > 0)
    .sort((a, b) => a.key.reason - b.key.reason || a.key.direction - b.key.direction)
    .map(({ key, value }) => [dropReasonText(key.reason), directionName(key.direction), String(value.packets), String(value.bytes), '0', 'unknown(0)']);
  return formatTable([['REASON', 'DIRECTION', 'PACKETS', 'BYTES', 'LINE', 'FILE'], ...rows], { padding: 3, minWidth: 5 });
}
