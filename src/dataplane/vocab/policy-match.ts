// Policy match types of policy-verdict events, numbered as Cilium's POLICY_MATCH_* (bpf/lib/policy_log.h)
// with the names monitor, Hubble and trace print.
export const POLICY_MATCH_NONE = 0;
export const POLICY_MATCH_L3_ONLY = 1; // identity, any protocol and port
export const POLICY_MATCH_L3_L4 = 2; // identity, protocol and port
export const POLICY_MATCH_L4_ONLY = 3; // any identity, protocol and port
export const POLICY_MATCH_ALL = 4; // any identity, protocol and port
export const POLICY_MATCH_L3_PROTO = 5; // identity and protocol, any port
export const POLICY_MATCH_PROTO_ONLY = 6; // any identity, protocol, any port

const NAMES = ['none', 'L3-Only', 'L3-L4', 'L4-Only', 'all', 'L3-Proto', 'Proto-Only'];

/** "L3-Only", "L3-L4", …; 'none' for unknown values. */
export function policyMatchName(match: number): string {
  return NAMES[match] ?? 'none';
}

/** The number of a name as policyMatchName prints it (Hubble's policy_match_type), or -1. */
export function policyMatchByName(name: string): number {
  return NAMES.indexOf(name);
}
