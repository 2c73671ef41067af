// Endpoints a user writes for a Service without a selector: their addresses become the service's
// backends (the ClusterIP balances to them) and what toServices allows. A service with a selector has
// its Endpoints from the endpoints controller (src/kube/derived.ts): writing one for it is refused.
import type { ApplyResult, HandlerContext, KindHandler } from './handlers.ts';
import { keyOf } from './handlers.ts';
import type { KindInfo } from './kinds.ts';
import { canonical, toServiceSpec, type Manifest } from './convert.ts';
import { FieldError } from './validate.ts';
import { tryParseIPv4 } from '../../wire/ip-text.ts';
import type { ServiceSpec } from '../types.ts';

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

/** The ready addresses of an Endpoints as service backends; a subset with one port sends there, else to the service port. */
function backendsOf(m: Manifest): NonNullable<ServiceSpec['backends']> {
  return ((m.subsets ?? []) as Subset[]).flatMap((s) => (s.addresses ?? []).map((a) => (s.ports?.length === 1 ? { ip: a.ip, port: s.ports[0].port } : { ip: a.ip })));
}

/** A Service manifest as the service manager takes it: a selector-less one with the backends of its Endpoints. */
export function serviceSpecOf(c: HandlerContext, m: Manifest): ServiceSpec {
  const spec = toServiceSpec(m);
  const ep = c.records('Endpoints').get(keyOf(spec.namespace, spec.name));
  if (!spec.selector && ep) spec.backends = backendsOf(ep.manifest);
  return spec;
}

export function endpointsHandler(c: HandlerContext, info: KindInfo): KindHandler {
  const records = () => c.records('Endpoints');
  /** The service these Endpoints feed, re-applied with their addresses (none when it does not exist yet). */
  const refreshService = async (ns: string, name: string) => {
    const svc = c.records('Service').get(keyOf(ns, name));
    if (svc && c.d.services.get(ns, name)) await c.d.services.apply(serviceSpecOf(c, svc.manifest));
  };
  return {
    validate: (m) => {
      const ns = m.metadata.namespace ?? 'default';
      if (c.d.services.get(ns, m.metadata.name)?.selector) {
        throw new FieldError('metadata.name', `service "${m.metadata.name}" has a selector: its endpoints are kept by the endpoints controller, not applied`, 422);
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
      await c.save('Endpoints', key, { manifest: m, createdAt: old?.createdAt ?? new Date().toISOString() });
      await refreshService(ns, m.metadata.name);
      return old ? 'configured' : 'created';
    },
    delete: async (ns, name) => {
      const key = keyOf(ns, name);
      if (!records().has(key)) throw c.notFound(info, name);
      await c.forget('Endpoints', key);
      await refreshService(ns!, name);
    },
    views: () => [...records().values()].map((s) => ({
      kind: 'Endpoints', namespace: s.manifest.metadata.namespace ?? 'default', name: s.manifest.metadata.name, createdAt: s.createdAt, manifest: s.manifest, status: {},
    })),
    reconcile: async (key) => {
      const [ns, name] = key.split('/');
      await refreshService(ns, name);
    },
  };
}
