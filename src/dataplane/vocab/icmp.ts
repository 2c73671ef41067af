// ICMPv4 type and code names as gopacket prints them (ICMPv4TypeCode.String()): Hubble summaries,
// metrics labels, cilium monitor's tuple and trace lines.
const UNREACH = ['Net', 'Host', 'Protocol', 'Port', 'FragmentationNeeded', 'SourceRoutingFailed', 'NetUnknown', 'HostUnknown', 'SourceIsolated',
  'NetAdminProhibited', 'HostAdminProhibited', 'NetTOS', 'HostTOS', 'CommAdminProhibited', 'HostPrecedence', 'PrecedenceCutoff'];

const ICMPV4: Record<number, { name: string; codes?: Record<number, string> }> = {
  0: { name: 'EchoReply' },
  3: { name: 'DestinationUnreachable', codes: Object.fromEntries(UNREACH.map((n, i) => [i, n])) },
  4: { name: 'SourceQuench' },
  5: { name: 'Redirect', codes: { 0: 'Net', 1: 'Host', 2: 'TOS+Net', 3: 'TOS+Host' } },
  8: { name: 'EchoRequest' },
  9: { name: 'RouterAdvertisement' },
  10: { name: 'RouterSolicitation' },
  11: { name: 'TimeExceeded', codes: { 0: 'TTLExceeded', 1: 'FragmentReassemblyTimeExceeded' } },
  12: { name: 'ParameterProblem', codes: { 0: 'PointerIndicatesError', 1: 'MissingOption', 2: 'BadLength' } },
  13: { name: 'TimestampRequest' },
  14: { name: 'TimestampReply' },
  15: { name: 'InfoRequest' },
  16: { name: 'InfoReply' },
  17: { name: 'AddressMaskRequest' },
  18: { name: 'AddressMaskReply' },
};

/** "EchoRequest", "DestinationUnreachable", …; undefined for an unknown type. */
export const icmpv4TypeName = (type: number): string | undefined => ICMPV4[type]?.name;

/** "EchoRequest", "DestinationUnreachable(Port)", "TimeExceeded(TTLExceeded)", "42(0)". */
export function icmpv4TypeCode(type: number, code: number): string {
  const info = ICMPV4[type];
  if (!info) return `${type}(${code})`;
  if (!info.codes) return code === 0 ? info.name : `${info.name}(Code: ${code})`;
  const c = info.codes[code];
  return c === undefined ? `${info.name}(Code: ${code})` : `${info.name}(${c})`;
}
