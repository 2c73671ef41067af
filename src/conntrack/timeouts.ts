// CT lifetimes in seconds, from the bpf-ct-timeout-* configuration keys.
export interface CtTimeouts {
  tcp: number;
  tcpSyn: number;
  tcpFin: number;
  any: number;
  serviceTcp: number;
  serviceAny: number;
}

export const DEFAULT_CT_TIMEOUTS: CtTimeouts = { tcp: 21600, tcpSyn: 60, tcpFin: 10, any: 60, serviceTcp: 21600, serviceAny: 60 };

export function timeoutsFromConfig(cfg: Record<string, unknown>): CtTimeouts {
  const n = (k: string, d: number) => (typeof cfg[k] === 'number' ? (cfg[k] as number) : d);
  return {
    tcp: n('bpf-ct-timeout-regular-tcp', 21600),
    tcpSyn: n('bpf-ct-timeout-regular-tcp-syn', 60),
    tcpFin: n('bpf-ct-timeout-regular-tcp-fin', 10),
    any: n('bpf-ct-timeout-regular-any', 60),
    serviceTcp: n('bpf-ct-timeout-service-tcp', 21600),
    serviceAny: n('bpf-ct-timeout-service-any', 60),
  };
}
