// DNS domain names on the wire: bounds-checked reading (with compression) and encoding.

/** RFC 1035 limits: 63 octets per label, 255 octets per name in wire form (length bytes and root included). */
export const MAX_LABEL = 63;
export const MAX_NAME = 255;

export interface WireName {
  /** Presentation form without the trailing dot ('' for the root); odd bytes escaped as \DDD. */
  name: string;
  /** Uncompressed wire form (labels + root), original case kept so questions echo byte for byte. */
  wire: Uint8Array;
  /** Offset just past the name in the message (past the first pointer if compressed). */
  end: number;
}

/** Reads the name at `off`; undefined on truncation, bad label types, loops or over-long names. */
export function readName(buf: Uint8Array, off: number): WireName | undefined {
  const out = new Uint8Array(MAX_NAME);
  let n = 0;
  let pos = off;
  let end = -1;
  // Every pointer must land before the segment it came from: offsets strictly fall, so no loops.
  let segmentStart = off;
  const labels: string[] = [];
  for (;;) {
    if (pos < 0 || pos >= buf.length) return undefined;
    const len = buf[pos];
    if (len === 0) {
      out[n++] = 0;
      if (end < 0) end = pos + 1;
      return { name: labels.join('.'), wire: out.slice(0, n), end };
    }
    const kind = len & 0xc0;
    if (kind === 0xc0) {
      if (pos + 1 >= buf.length) return undefined;
      const ptr = ((len & 0x3f) << 8) | buf[pos + 1];
      if (ptr >= segmentStart) return undefined;
      if (end < 0) end = pos + 2;
      pos = segmentStart = ptr;
      continue;
    }
    // 0x40/0x80 are the obsolete extended/binary label types: refuse them.
    if (kind !== 0) return undefined;
    if (pos + 1 + len > buf.length) return undefined;
    if (n + 1 + len + 1 > MAX_NAME) return undefined;
    out.set(buf.subarray(pos, pos + 1 + len), n);
    n += 1 + len;
    labels.push(labelText(buf, pos + 1, len));
    pos += 1 + len;
  }
}

function labelText(buf: Uint8Array, from: number, len: number): string {
  let s = '';
  for (let i = from; i < from + len; i++) {
    const c = buf[i];
    // Dots and backslashes inside a label, and non-printables, are escaped as dig prints them.
    if (c <= 0x20 || c >= 0x7f || c === 0x2e || c === 0x5c) s += '\\' + String(c).padStart(3, '0');
    else s += String.fromCharCode(c);
  }
  return s;
}

/** Normalises a name for lookups: lower case, no trailing dot. */
export function canonical(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/** Encodes a plain dotted ASCII name (config values, not client input); throws on invalid names. */
export function encodeName(name: string): Uint8Array {
  const plain = name.endsWith('.') ? name.slice(0, -1) : name;
  const labels = plain === '' ? [] : plain.split('.');
  const out = new Uint8Array(labels.reduce((s, l) => s + l.length + 1, 1));
  let n = 0;
  for (const label of labels) {
    if (label.length === 0 || label.length > MAX_LABEL || !/^[\x21-\x7e]+$/.test(label)) throw new Error(`invalid DNS name: ${name}`);
    out[n++] = label.length;
    for (let i = 0; i < label.length; i++) out[n++] = label.charCodeAt(i);
  }
  out[n] = 0;
  if (out.length > MAX_NAME) throw new Error(`DNS name too long: ${name}`);
  return out;
}

/** True when `name` (canonical) is `zone` or below it. */
export function inZone(name: string, zone: string): boolean {
  return zone === '' || name === zone || name.endsWith('.' + zone);
}
