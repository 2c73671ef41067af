// Trace observation points (Cilium's TRACE_*, pkg/monitor/api TraceObservationPoints) and service
// translation points (TraceSockNotify's XlatePoint*): number, monitor text, flow.proto enum name.
export const TRACE_TO_LXC = 0;
export const TRACE_TO_PROXY = 1;
export const TRACE_TO_HOST = 2;
export const TRACE_TO_STACK = 3;
export const TRACE_TO_OVERLAY = 4;
export const TRACE_FROM_LXC = 5;
export const TRACE_FROM_PROXY = 6;
export const TRACE_FROM_HOST = 7;
export const TRACE_FROM_STACK = 8;
export const TRACE_FROM_OVERLAY = 9;
export const TRACE_FROM_NETWORK = 10;
export const TRACE_TO_NETWORK = 11;
export const TRACE_FROM_CRYPTO = 12;
export const TRACE_TO_CRYPTO = 13;

/** Indexed by TRACE_*: [monitor text, flow.TraceObservationPoint name]. */
const TRACE_POINTS: ReadonlyArray<readonly [string, string]> = [
  ['to-endpoint', 'TO_ENDPOINT'], ['to-proxy', 'TO_PROXY'], ['to-host', 'TO_HOST'], ['to-stack', 'TO_STACK'], ['to-overlay', 'TO_OVERLAY'],
  ['from-endpoint', 'FROM_ENDPOINT'], ['from-proxy', 'FROM_PROXY'], ['from-host', 'FROM_HOST'], ['from-stack', 'FROM_STACK'],
  ['from-overlay', 'FROM_OVERLAY'], ['from-network', 'FROM_NETWORK'], ['to-network', 'TO_NETWORK'], ['from-crypto', 'FROM_CRYPTO'], ['to-crypto', 'TO_CRYPTO'],
];

/** "to-endpoint", "to-stack", …; undefined for an unknown point. */
export const tracePointName = (point: number): string | undefined => TRACE_POINTS[point]?.[0];

/** flow.TraceObservationPoint: "TO_ENDPOINT", …; UNKNOWN_POINT for an unknown point. */
export const tracePointEnum = (point: number): string => TRACE_POINTS[point]?.[1] ?? 'UNKNOWN_POINT';

/** The TRACE_* number of a monitor text, or undefined. */
export function tracePointByName(name: string): number | undefined {
  const i = TRACE_POINTS.findIndex(([text]) => text === name);
  return i < 0 ? undefined : i;
}

export const XLATE_PRE_FWD = 1;
export const XLATE_POST_FWD = 2;
export const XLATE_PRE_REV = 3;
export const XLATE_POST_REV = 4;

/** Indexed by XLATE_*: [monitor text, flow.SocketTranslationPoint name]. */
const XLATE_POINTS: ReadonlyArray<readonly [string, string]> = [
  ['unknown', 'SOCK_XLATE_POINT_UNKNOWN'],
  ['pre-xlate-fwd', 'SOCK_XLATE_POINT_PRE_DIRECTION_FWD'], ['post-xlate-fwd', 'SOCK_XLATE_POINT_POST_DIRECTION_FWD'],
  ['pre-xlate-rev', 'SOCK_XLATE_POINT_PRE_DIRECTION_REV'], ['post-xlate-rev', 'SOCK_XLATE_POINT_POST_DIRECTION_REV'],
];

/** "pre-xlate-fwd", …; undefined for an unknown point. */
export const xlatePointName = (point: number): string | undefined => (point > 0 ? XLATE_POINTS[point]?.[0] : undefined);

/** flow.SocketTranslationPoint: "SOCK_XLATE_POINT_PRE_DIRECTION_FWD", …. */
export const xlatePointEnum = (point: number): string => XLATE_POINTS[point]?.[1] ?? 'SOCK_XLATE_POINT_UNKNOWN';

/** The monitor text of a flow.SocketTranslationPoint name, or undefined. */
export const xlatePointNameOfEnum = (e: string): string | undefined => XLATE_POINTS.find(([, name]) => name === e)?.[0];

/** Pre-translation points (the packet as the socket sent it): Hubble reports them TRACED. */
export const isPreXlate = (point: number): boolean => point === XLATE_PRE_FWD || point === XLATE_PRE_REV;
