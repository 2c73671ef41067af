// TCP flag bits with their names: one table, printed in two orders.
export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_URG = 0x20;
export const TCP_ECE = 0x40;
export const TCP_CWR = 0x80;
export const TCP_NS = 0x100; // the low bit of the data-offset byte

/** Bit order, which is flow.TCPFlags' field order (FIN, SYN, RST, …). */
const FLAGS: ReadonlyArray<readonly [number, string]> = [
  [TCP_FIN, 'FIN'], [TCP_SYN, 'SYN'], [TCP_RST, 'RST'], [TCP_PSH, 'PSH'], [TCP_ACK, 'ACK'], [TCP_URG, 'URG'], [TCP_ECE, 'ECE'], [TCP_CWR, 'CWR'], [TCP_NS, 'NS'],
];
/** The order summaries print (Hubble's "TCP Flags: SYN, ACK", cilium monitor's tuple). */
const SUMMARY = [TCP_SYN, TCP_ACK, TCP_RST, TCP_FIN, TCP_PSH, TCP_URG, TCP_ECE, TCP_CWR, TCP_NS].map((bit) => FLAGS.find(([b]) => b === bit)!);

export const TCP_FLAG_NAMES: readonly string[] = FLAGS.map(([, n]) => n);

/** Names of the set flags in bit order (flow JSON). */
export const tcpFlagsInBitOrder = (flags: number): string[] => FLAGS.filter(([b]) => flags & b).map(([, n]) => n);

/** Names of the set flags in summary order: SYN, ACK, RST, FIN, …. */
export const tcpFlagsInSummaryOrder = (flags: number): string[] => SUMMARY.filter(([b]) => flags & b).map(([, n]) => n);
