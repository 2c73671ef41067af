// The program table: a program's id in a program array is its index here plus one.
// Hooks (cil_from_*) are entry points attached to devices (Datapath.attach); the tail-call
// targets live in the file of the hook whose chain they belong to.
import type { PacketContext } from '../context.ts';
import type { Datapath } from '../datapath.ts';
import * as C from '../calls.ts';
import { handle_ipv4_from_lxc, tail_handle_ipv4, tail_ipv4_ct_egress, tail_ipv4_policy, tail_ipv4_to_endpoint } from './bpf_lxc.ts';
import { tail_handle_ipv4_from_host } from './bpf_host.ts';

/**
 * A program returns a verdict (CTX_ACT_*). A hook, which the engine runs, resolves CTX_ACT_OK itself:
 * it returns CTX_ACT_REDIRECT (ctx.outFd set) or CTX_ACT_DROP (ctx.dropReason set).
 */
export type Program = (ctx: PacketContext, dp: Datapath) => number;

export { cil_from_container } from './bpf_lxc.ts';
export { cil_from_host } from './bpf_host.ts';
export { cil_from_overlay } from './bpf_overlay.ts';

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
