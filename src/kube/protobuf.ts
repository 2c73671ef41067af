// The protobuf bodies typed clients send (`kubectl create namespace`): the "k8s\0" envelope around a
// runtime.Unknown, and the ObjectMeta of the object inside. Other protobuf bodies are refused with 415.
import { StatusError } from './status.ts';

type Fields = Map<number, Array<Buffer | number>>;

function varint(b: Buffer, at: { i: number }): number {
  let n = 0;
  let shift = 0;
  for (;;) {
    if (at.i >= b.length) throw new Error('truncated varint');
    const byte = b[at.i++];
    n += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) return n;
    shift += 7;
  }
}

function fields(b: Buffer): Fields {
  const out: Fields = new Map();
  const at = { i: 0 };
  while (at.i < b.length) {
    const tag = varint(b, at);
    const field = Math.floor(tag / 8);
    let value: Buffer | number;
    switch (tag & 7) {
      case 0: value = varint(b, at); break;
      case 2: {
        const len = varint(b, at);
        value = b.subarray(at.i, at.i + len);
        at.i += len;
        break;
      }
      case 1: at.i += 8; continue;
      case 5: at.i += 4; continue;
      default: throw new Error(`wire type ${tag & 7}`);
    }
    out.set(field, [...(out.get(field) ?? []), value]);
  }
  return out;
}

const text = (f: Fields, n: number) => {
  const v = f.get(n)?.[0];
  return Buffer.isBuffer(v) ? v.toString('utf8') : undefined;
};

function stringMap(f: Fields, n: number): Record<string, string> | undefined {
  const entries = (f.get(n) ?? []).filter(Buffer.isBuffer).map((e) => fields(e));
  return entries.length ? Object.fromEntries(entries.map((e) => [text(e, 1) ?? '', text(e, 2) ?? ''])) : undefined;
}

const unsupported = () => new StatusError(415, 'UnsupportedMediaType', 'the body of the request was in an unknown format - accepted media types include: application/json, application/yaml');

/** The JSON object of a protobuf body; only kinds whose content is just ObjectMeta (Namespace) are known. */
export function decodeProtobufObject(body: Buffer): Record<string, unknown> {
  if (body.subarray(0, 4).toString('latin1') !== 'k8s\0') throw unsupported();
  try {
    const unknown = fields(body.subarray(4));
    const typeMeta = fields(unknown.get(1)?.[0] as Buffer ?? Buffer.alloc(0));
    const kind = text(typeMeta, 2);
    if (kind !== 'Namespace') throw unsupported();
    const obj = fields(unknown.get(2)?.[0] as Buffer ?? Buffer.alloc(0));
    const meta = fields(obj.get(1)?.[0] as Buffer ?? Buffer.alloc(0));
    const labels = stringMap(meta, 11);
    const annotations = stringMap(meta, 12);
    return { apiVersion: text(typeMeta, 1) ?? 'v1', kind, metadata: { name: text(meta, 1) ?? '', ...(labels ? { labels } : {}), ...(annotations ? { annotations } : {}) } };
  } catch (e) {
    if (e instanceof StatusError) throw e;
    throw new StatusError(400, 'BadRequest', `the request body could not be decoded: ${(e as Error).message}`);
  }
}
