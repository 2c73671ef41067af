// cilium_calls_<endpoint>: an endpoint's program array, CILIUM_CALL_* slot → program id + 1 (0 = empty).
import { CALL_NAMES } from '../../dataplane/calls.ts';
import { specOf, viewOf, type MapDef, type MapEntryText } from './types.ts';

export const CALLS_ENTRIES = 64;
export const callsMapName = (endpointID: number) => `cilium_calls_${String(endpointID).padStart(5, '0')}`;
const CALLS_NAME_RE = /^cilium_calls_\d{5}$/;

export interface CallsKey {
  slot: number;
}

export interface CallsValue {
  /** Index into the datapath's program table plus one; 0 = no program. */
  program: number;
}

export function formatCallsEntry(k: CallsKey, v: CallsValue): MapEntryText {
  return { key: `${k.slot} (${CALL_NAMES[k.slot] ?? 'unnamed slot'})`, value: v.program === 0 ? '(empty)' : `prog_id=${v.program}` };
}

export const callsDef: MapDef<CallsKey, CallsValue> = {
  name: 'cilium_calls_<endpoint id, 5 digits>',
  matches: (n) => CALLS_NAME_RE.test(n),
  type: 'array',
  keySize: 4,
  valueSize: 4,
  maxEntries: CALLS_ENTRIES,
  decodeKey: (b) => ({ slot: viewOf(b).getUint32(0, true) }),
  decodeValue: (b) => ({ program: viewOf(b).getUint32(0, true) }),
  encodeKey: (k, out) => viewOf(out).setUint32(0, k.slot, true),
  encodeValue: (x, out) => viewOf(out).setUint32(0, x.program, true),
  format: formatCallsEntry,
};

export const callsSpec = (endpointID: number) => specOf(callsDef, CALLS_ENTRIES, callsMapName(endpointID));
