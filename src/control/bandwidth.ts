// The bandwidth manager's control side: the kubernetes.io/egress-bandwidth pod annotation (a
// Kubernetes quantity in bits per second) becomes the endpoint's rate in cilium_throttle, set when
// the pod starts and changed in place when its annotation changes.
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import type { EdtStats } from '../dataplane/lib/edt.ts';
import type { Logger } from './log.ts';
import { formatBitRate } from '../maps/cilium/throttle.ts';

export const EGRESS_BANDWIDTH = 'kubernetes.io/egress-bandwidth';
export const INGRESS_BANDWIDTH = 'kubernetes.io/ingress-bandwidth';

/** The bounds Kubernetes' bandwidth shaping accepts: 1k .. 1P bits per second. */
const MIN_BPS = 1e3;
const MAX_BPS = 1e15;

const SUFFIX: Record<string, number> = {
  '': 1, n: 1e-9, u: 1e-6, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};

/** resource.ParseQuantity's grammar (10M, 500k, 2.5M, 1Gi, 1e6), as a number; undefined when it is not a quantity. */
export function parseQuantity(s: string): number | undefined {
  const m = /^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)$/.exec(s.trim());
  if (!m) return undefined;
  return Number(m[1]) * (m[2] ? 10 ** Number(m[2].slice(1)) : SUFFIX[m[3] ?? '']);
}

/** The egress rate an annotation value asks for (bits/s, rounded up as Quantity.Value() does), or why it cannot be used. */
export function parseBandwidth(value: string): { bitsPerSec: number } | { error: string } {
  const q = parseQuantity(value);
  if (q === undefined) return { error: `"${value}" is not a quantity (e.g. 10M, 500k, 2.5M, 1G: bits per second)` };
  const bitsPerSec = Math.ceil(q);
  if (bitsPerSec < MIN_BPS) return { error: `"${value}" is unreasonably small (< 1k bits per second)` };
  if (bitsPerSec > MAX_BPS) return { error: `"${value}" is unreasonably large (> 1P bits per second)` };
  return { bitsPerSec };
}

/** What is wrong with a pod's bandwidth annotations, as the apply error names it; undefined when nothing is. */
export function bandwidthAnnotationProblem(annotations: Record<string, string> | undefined): { key: string; reason: string } | undefined {
  if (!annotations) return undefined;
  if (annotations[INGRESS_BANDWIDTH] !== undefined) {
    return { key: INGRESS_BANDWIDTH, reason: 'is not supported: the bandwidth manager limits egress only (use kubernetes.io/egress-bandwidth)' };
  }
  const egress = annotations[EGRESS_BANDWIDTH];
  if (egress === undefined) return undefined;
  const r = parseBandwidth(String(egress));
  return 'error' in r ? { key: EGRESS_BANDWIDTH, reason: r.error } : undefined;
}

/** The datapath side it drives (Datapath.edt). */
export interface EdtControl {
  setRate(ep: number, bitsPerSec: number, horizonMs: number): void;
  clearRate(ep: number): void;
  removeEndpoint(ep: number): void;
  clearAll(): void;
  rateOf(ep: number): number;
  stats(): EdtStats;
}

/** The native device Cilium names in its status line: the one holding the node IP, else the default route's, else ''. */
export function nativeDevice(nodeIP: string): string {
  for (const [name, addrs] of Object.entries(networkInterfaces())) if (nodeIP && addrs?.some((a) => a.address === nodeIP)) return name;
  try {
    // /proc/net/route: Iface Destination Gateway …; the default route has destination 00000000.
    const line = readFileSync('/proc/net/route', 'utf8').split('\n').slice(1).find((l) => l.split('\t')[1] === '00000000');
    return line?.split('\t')[0] ?? '';
  } catch {
    return '';
  }
}

export class BandwidthManager {
  constructor(
    private readonly edt: EdtControl,
    readonly enabled: boolean,
    private readonly horizonMs: number,
    private readonly log: Logger,
  ) {
    // Limits a previous agent left in cilium_throttle stay only while the manager is on.
    if (!enabled) edt.clearAll();
  }

  /** A pod started or its annotations changed: its endpoint gets the annotated rate, or none. */
  apply(endpointId: number, annotations: Record<string, string> | undefined): void {
    const value = annotations?.[EGRESS_BANDWIDTH];
    const r = this.enabled && value !== undefined ? parseBandwidth(String(value)) : undefined;
    if (r && 'bitsPerSec' in r) {
      this.edt.setRate(endpointId, r.bitsPerSec, this.horizonMs);
      this.log.info({ endpoint: endpointId, bitsPerSec: r.bitsPerSec }, 'egress bandwidth limited');
    } else {
      this.edt.clearRate(endpointId);
    }
  }

  /** The endpoint is gone. */
  removed(endpointId: number): void {
    this.edt.removeEndpoint(endpointId);
  }

  /** The endpoint's egress limit as the annotation reads (10M), or undefined. */
  limitOf(endpointId: number): string | undefined {
    const bps = this.edt.rateOf(endpointId);
    return bps > 0 ? formatBitRate(bps) : undefined;
  }

  /** `status`'s BandwidthManager value. */
  statusText(nodeIP: string): string {
    if (!this.enabled) return 'Disabled';
    const dev = nativeDevice(nodeIP);
    return `EDT with BPF [CUBIC]${dev ? ` [${dev}]` : ''}`;
  }

  stats(): EdtStats {
    return this.edt.stats();
  }
}
