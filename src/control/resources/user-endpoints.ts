// Endpoints and EndpointSlices a user writes for a Service without a selector: their addresses become
// the service's backends (the ClusterIP balances to them) and what toServices allows. A service with a
// selector has them from the endpoints controllers (src/kube/derived.ts): writing one for it is refused.
import type { ApplyResult, HandlerContext, KindHandler } from './handlers.ts';
import { keyOf } from './handlers.ts';
import type { KindInfo } from './kinds.ts';
import { canonical, toServiceSpec, type Manifest } from './convert.ts';
import { FieldError } from './validate.ts';
import { tryParseIPv4 } from '../../wire/ip-text.ts';
import type { ServiceSpec } from '../types.ts';

/** An EndpointSlice names its service by this label. */
const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

type Slice = { endpoints?: Array<{ addresses: string[]; conditions?: { ready?: boolean } }>; ports?: Array<{ port?: number }> };
type Subset = { addresses?: Array<{ ip: string }>; notReadyAddresses?: Array<{ ip: string }>; ports?: Array<{ name?: string; port: number; protocol?: string }> };

/** Addresses must be IPv4 and ports in range (schema checked the shape). */
export function validateEndpointsSubsets(subsets: unknown): void {
  ((subsets ?? []) as Subset[]).forEach((s, i) => {
    for (const key of ['addresses', 'notReadyAddresses'] as const) {
      (s[key] ?? []).forEach((a, j) => {
        if (tryParseIPv4(a.ip) === undefined) throw new FieldError(`subsets[${i}].${key}[${j}].ip`, `Invalid value: "${a.ip}": must be a valid IPv4 address`);
      });
    }
    (s.ports ?? []).forEach((p, j) => {
      if (p.port < 1 || p.port > 65535) throw new FieldError(`subsets[${i}].ports[${j}].port`, `must be between 1 and 65535, not ${p.port}`);
    });
  });
}

/** An EndpointSlice's addresses must be IPv4 and it must name its service (schema checked the shape). */
export function validateEndpointSlice(o: Record<string, unknown>): void {
  if (!(o.metadata as Manifest['metadata']).labels?.[SERVICE_NAME_LABEL]) throw new FieldError(`metadata.labels.${SERVICE_NAME_LABEL}`, 'required: the service these endpoints belong to');
  ((o.endpoints ?? []) as NonNullable<Slice['endpoints']>).forEach((e, i) => e.addresses.forEach((a, j) => {
    if (tryParseIPv4(a) === undefined) throw new FieldError(`endpoints[${i}].addresses[${j}]`, `Invalid value: "${a}": must be a valid IPv4 address`);
  }));
}

/** The service an Endpoints (its own name) or EndpointSlice (its label) belongs to. */
const serviceOf = (m: Manifest): string => (m.kind === 'EndpointSlice' ? m.metadata.labels![SERVICE_NAME_LABEL] : m.metadata.name);

/** Ready addresses as service backends; with one port they are sent there, else to the service port. */
function backendsOf(m: Manifest): NonNullable<ServiceSpec['backends']> {
  const at = (ip: string, ports: Array<{ port?: number }> | undefined) => (ports?.length === 1 && ports[0].port ? { ip, port: ports[0].port } : { ip });
  if (m.kind === 'EndpointSlice') {
    const s = m as unknown as Slice;
    return (s.endpoints ?? []).filter((e) => e.conditions?.ready !== false).flatMap((e) => e.addresses.map((ip) => at(ip, s.ports)));
  }
  return ((m.subsets ?? []) as Subset[]).flatMap((s) => (s.addresses ?? []).map((a) => at(a.ip, s.ports)));
}

/** A Service manifest as the service manager takes it: a selector-less one with the backends of its Endpoints and EndpointSlices. */
export function serviceSpecOf(c: HandlerContext, m: Manifest): ServiceSpec {
  const spec = toServiceSpec(m);
  if (spec.selector) return spec;
  const own = [...c.records('Endpoints').values(), ...c.records('EndpointSlice').values()]
    .filter((r) => (r.manifest.metadata.namespace ?? 'default') === spec.namespace && serviceOf(r.manifest) === spec.name);
  if (own.length) spec.backends = [...new Map(own.flatMap((r) => backendsOf(r.manifest)).map((b) => [`${b.ip}:${b.port}`, b])).values()];
  return spec;
}

/** Endpoints and EndpointSlices: records, applied to their service's backends. */
export function endpointsHandler(c: HandlerContext, info: KindInfo): KindHandler {
  const records = () => c.records(info.kind);
  /** The service these Endpoints feed, re-applied with their addresses (none when it does not exist yet). */
  const refreshService = async (ns: string, name: string) => {
    const svc = c.records('Service').get(keyOf(ns, name));
    if (svc && c.d.services.get(ns, name)) await c.d.services.apply(serviceSpecOf(c, svc.manifest));
  };
  return {
    validate: (m) => {
      const ns = m.metadata.namespace ?? 'default';
      const name = serviceOf(m);
      if (c.d.services.get(ns, name)?.selector) {
        throw new FieldError('metadata.name', `service "${name}" has a selector: its endpoints are kept by the endpoints controller, not applied`, 422);
      }
    },
    exists: (ns, name) => records().has(keyOf(ns, name)),
    wouldBe: (m) => {
      const old = records().get(keyOf(m.metadata.namespace, m.metadata.name));
      return !old ? 'created' : canonical(old.manifest) === canonical(m) ? 'unchanged' : 'configured';
    },
    apply: async (m): Promise<ApplyResult> => {
      const ns = m.metadata.namespace ?? 'default';
      const key = keyOf(ns, m.metadata.name);
      const old = records().get(key);
      if (old && canonical(old.manifest) === canonical(m)) return 'unchanged';
      await c.save(info.kind, key, { manifest: m, createdAt: old?.createdAt ?? new Date().toISOString() });
      await refreshService(ns, serviceOf(m));
      // A slice relabelled to another service leaves the old one's backends.
      if (old && serviceOf(old.manifest) !== serviceOf(m)) await refreshService(ns, serviceOf(old.manifest));
      return old ? 'configured' : 'created';
    },
    delete: async (ns, name) => {
      const key = keyOf(ns, name);
      const old = records().get(key);
      if (!old) throw c.notFound(info, name);
      await c.forget(info.kind, key);
      await refreshService(ns!, serviceOf(old.manifest));
    },
    views: () => [...records().values()].map((s) => ({
      kind: info.kind, namespace: s.manifest.metadata.namespace ?? 'default', name: s.manifest.metadata.name, createdAt: s.createdAt, manifest: s.manifest, status: {},
    })),
    reconcile: async (key, stored, previous) => {
      const ns = key.split('/')[0];
      for (const m of new Set([stored, previous].flatMap((s) => (s ? [serviceOf(s.manifest)] : [])))) await refreshService(ns, m);
    },
  };
}
