// The trace API's shapes: what a client asks for and what it gets per packet.

/** GET /v1/trace query (all strings, as they arrive); the agent validates them. */
export interface TraceRequest {
  pod?: string;
  namespace?: string;
  ip?: string;
  srcIp?: string;
  dstIp?: string;
  port?: string;
  proto?: string;
  /** Packets to trace (default 10). */
  count?: string;
  /** Seconds before the trace ends by itself (default: none). */
  timeout?: string;
}

/** One traced packet: a header line, every step in order, the final verdict. */
export interface PacketTraceRecord {
  header: string;
  steps: string[];
  verdict: string;
}

export type TraceEndReason = 'count' | 'timeout' | 'stopped';

export interface TraceSink {
  packet(t: PacketTraceRecord): void;
  end(reason: TraceEndReason): void;
}
