// The OpenAPI v3 documents kubectl reads before apply/create and for explain: the root lists a document per
// group-version; each names the PATCH operations with their fieldValidation parameter, so kubectl leaves
// validation to the server (the resource manager validates every field), and the kinds' schemas.
import { kindSchema } from './openapi-schemas.ts';
import { groupVersion, RESOURCES } from './resources.ts';

/** io.k8s.api.core.v1.Pod, io.k8s.api.apps.v1.Deployment, io.cilium.v2.CiliumNetworkPolicy. */
const schemaName = (group: string, version: string, kind: string) =>
  `${group === '' ? 'io.k8s.api.core' : group.endsWith('.k8s.io') || !group.includes('.') ? `io.k8s.api.${group.split('.')[0]}` : group.split('.').reverse().join('.')}.${version}.${kind}`;

const prefix = (gv: string) => (gv.includes('/') ? `apis/${gv}` : `api/${gv}`);

export function openapiRoot(): Record<string, unknown> {
  const gvs = [...new Set(RESOURCES.map(groupVersion))];
  return { paths: Object.fromEntries(gvs.map((gv) => [prefix(gv), { serverRelativeURL: `/openapi/v3/${prefix(gv)}` }])) };
}

/** GET /openapi/v3/api/v1, /openapi/v3/apis/<g>/<v>; undefined for a group-version we do not serve. */
export function openapiGroupVersion(path: string): Record<string, unknown> | undefined {
  const rs = RESOURCES.filter((r) => prefix(groupVersion(r)) === path && r.stored);
  if (!RESOURCES.some((r) => prefix(groupVersion(r)) === path)) return undefined;
  const paths: Record<string, unknown> = {};
  for (const r of rs) {
    const item = `/${prefix(groupVersion(r))}/${r.namespaced ? 'namespaces/{namespace}/' : ''}${r.plural}/{name}`;
    paths[item] = {
      patch: {
        operationId: `patch${r.kind}`,
        'x-kubernetes-group-version-kind': { group: r.group, version: r.version, kind: r.kind },
        parameters: [
          { name: 'fieldValidation', in: 'query', schema: { type: 'string', uniqueItems: true } },
          { name: 'dryRun', in: 'query', schema: { type: 'string', uniqueItems: true } },
        ],
      },
    };
  }
  const schemas: Record<string, unknown> = {};
  for (const r of rs) {
    const schema = kindSchema(r.kind, r.group, r.version);
    if (schema) schemas[schemaName(r.group, r.version, r.kind)] = schema;
  }
  return { openapi: '3.0.0', info: { title: 'Kubernetes', version: 'v1.32.0' }, paths, components: { schemas } };
}
