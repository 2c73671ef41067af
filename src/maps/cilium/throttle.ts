// cilium_throttle: the bandwidth manager's per-endpoint EDT state (Cilium's edt_id → edt_info),
// `bpf bandwidth list`. Times are the agent's monotonic clock in ms; values are f64 so the
// per-packet step reads and writes them in place without BigInt.
import { specOf, viewOf, type MapDef, type MapEntryText } from './types.ts';

export const THROTTLE_MAP = 'cilium_throttle';

/** Key: u64 endpoint id (little-endian; the high word is zero). */
export const THROTTLE_KEY = 8;
/** Value fields (little-endian). */
export const TH_BPS = 0; // f64 bits per second
export const TH_T_LAST = 8; // f64 ms: departure time of the last packet scheduled
export const TH_HORIZON = 16; // f64 ms: a departure further ahead than this drops (DROP_EDT_HORIZON)
export const TH_QUEUED = 24; // u32 packets held in the endpoint's queue now
export const TH_QUEUE_MAX = 28; // u32 packets the queue can hold
export const THROTTLE_VALUE = 32;
/** Cilium's THROTTLE_MAP_SIZE. */
export const THROTTLE_MAX_ENTRIES = 65536;

export interface ThrottleKey {
  endpointId: number;
}

export interface ThrottleValue {
  bitsPerSec: number;
  tLastMs: number;
  horizonMs: number;
  queued: number;
  queueMax: number;
}

const SI: ReadonlyArray<[number, string]> = [[1e18, 'E'], [1e15, 'P'], [1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']];

/** A rate as Kubernetes prints a DecimalSI quantity: the largest suffix that keeps it whole (10M, 2500k, 1G). */
export function formatBitRate(bits: number): string {
  for (const [scale, suffix] of SI) if (bits >= scale && bits % scale === 0) return `${bits / scale}${suffix}`;
  return String(bits);
}

/** `bpf bandwidth list`: endpoint id (under IDENTITY, as Cilium prints it) and the egress rate. */
export function formatThrottleEntry(k: ThrottleKey, v: ThrottleValue): MapEntryText {
  return { key: String(k.endpointId), value: formatBitRate(v.bitsPerSec) };
}

export const throttleDef: MapDef<ThrottleKey, ThrottleValue> = {
  name: THROTTLE_MAP,
  matches: (n) => n === THROTTLE_MAP,
  type: 'hash',
  keySize: THROTTLE_KEY,
  valueSize: THROTTLE_VALUE,
  maxEntries: THROTTLE_MAX_ENTRIES,
  decodeKey: (b) => ({ endpointId: viewOf(b).getUint32(0, true) }),
  decodeValue(b) {
    const v = viewOf(b);
    return {
      bitsPerSec: v.getFloat64(TH_BPS, true), tLastMs: v.getFloat64(TH_T_LAST, true), horizonMs: v.getFloat64(TH_HORIZON, true),
      queued: v.getUint32(TH_QUEUED, true), queueMax: v.getUint32(TH_QUEUE_MAX, true),
    };
  },
  encodeKey(k, out) {
    const v = viewOf(out);
    v.setUint32(0, k.endpointId, true);
    v.setUint32(4, 0, true);
  },
  encodeValue(x, out) {
    const v = viewOf(out);
    v.setFloat64(TH_BPS, x.bitsPerSec, true);
    v.setFloat64(TH_T_LAST, x.tLastMs, true);
    v.setFloat64(TH_HORIZON, x.horizonMs, true);
    v.setUint32(TH_QUEUED, x.queued, true);
    v.setUint32(TH_QUEUE_MAX, x.queueMax, true);
  },
  format: formatThrottleEntry,
};

export const throttleSpec = () => specOf(throttleDef, THROTTLE_MAX_ENTRIES);
