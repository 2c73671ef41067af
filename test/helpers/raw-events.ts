// Decoded monitor records written the way a reader names them ("to-endpoint", "established",
// "L3-L4"), for Hubble and metrics tests: the names are looked up in the shared vocabularies.
import type { EventPacket } from '../../src/control/types.ts';
import type { RawEvent } from '../../src/dataplane/events.ts';
import { ctStateName } from '../../src/dataplane/vocab/ct-states.ts';
import { MESSAGE_TYPE_NAMES, MSG_ACCESS_LOG } from '../../src/dataplane/vocab/message-types.ts';
import { policyMatchByName } from '../../src/dataplane/vocab/policy-match.ts';
import { tracePointByName, xlatePointName } from '../../src/dataplane/vocab/trace-points.ts';
import type { L7Event } from '../../src/proxy/http/listener.ts';

export interface ReadableEvent {
  observationPoint?: string;
  xlatePoint?: string;
  ctState?: string;
  direction?: 'ingress' | 'egress';
  /** Source endpoint id. */
  source?: number;
  packet?: EventPacket;
  /** Drop reason (drops, denied verdicts). */
  reason?: number;
  policyMatch?: string;
  action?: 'allow' | 'deny';
  srcIdentity?: number;
  dstIdentity?: number;
  l7?: Record<string, unknown>;
}

const numberOf = (name: string | undefined, nameOf: (n: number) => string | undefined, none: number): number => {
  for (let n = 0; n < 256; n++) if (name !== undefined && nameOf(n) === name) return n;
  return none;
};

export function rawEvent(type: 'trace' | 'drop' | 'policy-verdict' | 'trace-sock' | 'l7', time: string, x: ReadableEvent): RawEvent {
  const ms = Date.parse(time);
  if (type === 'l7') {
    const peer = (identity = 0) => ({ id: 0, identity, labels: [] });
    return { type: MSG_ACCESS_LOG, time: ms, record: x.l7 as unknown as L7Event, client: peer(x.srcIdentity), server: peer(x.dstIdentity) };
  }
  const verdict = type === 'policy-verdict';
  const sub = type === 'trace' ? tracePointByName(x.observationPoint ?? 'to-endpoint')!
    : type === 'drop' ? x.reason ?? 0
      : type === 'trace-sock' ? numberOf(x.xlatePoint, xlatePointName, 0)
        : x.direction === 'egress' ? 1 : 0;
  return {
    type: MESSAGE_TYPE_NAMES[type], sub, ctState: numberOf(x.ctState, ctStateName, 255),
    direction: verdict ? 0 : x.direction === 'ingress' ? 1 : x.direction === 'egress' ? 2 : 0,
    srcEp: x.source ?? 0, dstEp: 0, srcIdentity: x.srcIdentity ?? 0, dstIdentity: x.dstIdentity ?? 0, ifindex: 0,
    origLen: x.packet?.length ?? 0, reason: verdict && x.action === 'deny' ? x.reason ?? 133 : 0,
    match: verdict ? Math.max(0, policyMatchByName(x.policyMatch ?? 'none')) : 0, time: ms, data: new Uint8Array(0), packet: x.packet,
  };
}
