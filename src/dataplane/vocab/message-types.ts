// Cilium's monitor message types (pkg/monitor/api/types.go MessageType*): the type byte of every
// monitor record and a flow's event_type.type, with the names `--type` takes.
export const MSG_DROP = 1;
export const MSG_DEBUG = 2;
export const MSG_CAPTURE = 3;
export const MSG_TRACE = 4;
export const MSG_POLICY_VERDICT = 5;
export const MSG_RECORDER = 6;
export const MSG_TRACE_SOCK = 7;
export const MSG_ACCESS_LOG = 129;
export const MSG_AGENT = 130;

/** api.MessageTypeNames. */
export const MESSAGE_TYPE_NAMES: Readonly<Record<string, number>> = {
  drop: MSG_DROP, debug: MSG_DEBUG, capture: MSG_CAPTURE, trace: MSG_TRACE, 'policy-verdict': MSG_POLICY_VERDICT,
  recorder: MSG_RECORDER, 'trace-sock': MSG_TRACE_SOCK, l7: MSG_ACCESS_LOG, agent: MSG_AGENT,
};
