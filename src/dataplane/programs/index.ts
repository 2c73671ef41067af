// The program table: a program's id in a program array is its index here plus one.
// Hooks (cil_*) are entry points attached to devices; the rest are tail-call targets.
import type { PacketContext } from '../context.ts';
import type { Datapath } from '../datapath.ts';
import * as C from '../calls.ts';
import { tail_handle_ipv4 } from './ipv4_from_lxc.ts';
import { handle_ipv4_from_lxc } from './ipv4_from_lxc_cont.ts';
import { tail_ipv4_to_endpoint } from './ipv4_to_endpoint.ts';
import { tail_handle_ipv4_from_host } from './ipv4_from_host.ts';
import { tail_ipv4_policy } from './ipv4_to_lxc_policy_only.ts';
import { tail_ipv4_ct_egress } from './ipv4_ct_egress.ts';

export type Program = (ctx: PacketContext, dp: Datapath) => number;

export const PROGRAMS: Program[] = [tail_handle_ipv4, handle_ipv4_from_lxc, tail_ipv4_to_endpoint, tail_handle_ipv4_from_host, tail_ipv4_policy, tail_ipv4_ct_egress];

/** Slots of a pod endpoint's program array. */
export const ENDPOINT_CALLS: Array<[number, Program]> = [
  [C.CILIUM_CALL_IPV4_FROM_LXC, tail_handle_ipv4],
  [C.CILIUM_CALL_IPV4_CT_EGRESS, tail_ipv4_ct_egress],
  [C.CILIUM_CALL_IPV4_FROM_LXC_CONT, handle_ipv4_from_lxc],
  [C.CILIUM_CALL_IPV4_TO_ENDPOINT, tail_ipv4_to_endpoint],
  [C.CILIUM_CALL_IPV4_TO_LXC_POLICY_ONLY, tail_ipv4_policy],
];

/** Slots of the host endpoint's program array. */
export const HOST_CALLS: Array<[number, Program]> = [[C.CILIUM_CALL_IPV4_FROM_HOST, tail_handle_ipv4_from_host]];
