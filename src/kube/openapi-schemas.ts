// OpenAPI v3 schemas for `kubectl explain`: the fields the resource manager validates (validate.ts), the
// CiliumNetworkPolicy rule fields, and a description for the fields the seeds and docs look up.
import { manifestSchema, type Schema } from '../control/resources/validate.ts';
import type { KindName } from '../control/resources/kinds.ts';

export type OpenApiSchema = Record<string, unknown>;

const DOCS: Record<string, string> = {
  Pod: 'Pod is a collection of containers that can run on a host. In ciliary a pod is a network namespace whose eth0 is a TUN device held by the agent, running the containers\' commands.',
  'Pod.spec': 'Specification of the desired behavior of the pod.',
  'Pod.spec.containers': 'List of containers belonging to the pod. Containers cannot currently be added or removed. There must be at least one container in a Pod. Cannot be updated.',
  'Pod.spec.containers.name': 'Name of the container specified as a DNS_LABEL. Each container in a pod must have a unique name (DNS_LABEL). Cannot be updated.',
  'Pod.spec.containers.image': 'Container image name. ciliary maps well-known images (nginx, netshoot, curl, busybox, the Star Wars demo) to local workloads.',
  'Pod.spec.containers.command': 'Entrypoint array. Not executed within a shell. The container image\'s ENTRYPOINT is used if this is not provided.',
  'Pod.spec.containers.args': 'Arguments to the entrypoint. The container image\'s CMD is used if this is not provided.',
  'Pod.spec.containers.env': 'List of environment variables to set in the container. Cannot be updated.',
  'Pod.spec.containers.ports': 'List of ports to expose from the container. Not specifying a port here DOES NOT prevent that port from being exposed.',
  'Pod.spec.nodeName': 'NodeName indicates in which node this pod is scheduled. If empty, the pod is placed on a node at apply.',
  'Pod.spec.nodeSelector': 'NodeSelector is a selector which must be true for the pod to fit on a node.',
  'Pod.spec.restartPolicy': 'Restart policy for all containers within the pod. One of Always, OnFailure, Never. Default to Always.',
  'Pod.spec.affinity': 'If specified, the pod\'s scheduling constraints (pod affinity and anti-affinity).',
  Service: 'Service is a named abstraction of software service (for example, mysql) consisting of local port (for example 3306) that the proxy listens on, and the selector that determines which pods will answer requests sent through the proxy.',
  'Service.spec': 'Spec defines the behavior of a service.',
  'Service.spec.type': 'type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ClusterIP, NodePort and LoadBalancer.',
  'Service.spec.selector': 'Route service traffic to pods with label keys and values matching this selector.',
  'Service.spec.ports': 'The list of ports that are exposed by this service.',
  'Service.spec.clusterIP': 'clusterIP is the IP address of the service, assigned from the service range when not given.',
  'Service.spec.sessionAffinity': 'Supports "ClientIP" and "None". Used to maintain session affinity. Defaults to None.',
  'Service.spec.externalIPs': 'externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.',
  'Service.spec.externalTrafficPolicy': 'Local keeps the client source address and only goes to node-local backends; Cluster (the default) spreads over all backends.',
  Deployment: 'Deployment enables declarative updates for Pods and ReplicaSets.',
  'Deployment.spec': 'Specification of the desired behavior of the Deployment.',
  'Deployment.spec.replicas': 'Number of desired pods. Defaults to 1.',
  CiliumNetworkPolicy: 'CiliumNetworkPolicy is a Kubernetes third-party resource with an extended version of NetworkPolicy.',
  'CiliumNetworkPolicy.spec': 'Spec is the desired Cilium specific rule specification.',
  'CiliumNetworkPolicy.spec.endpointSelector': 'EndpointSelector selects all endpoints which should be subject to this rule.',
  'CiliumNetworkPolicy.spec.ingress': 'Ingress is a list of IngressRule which are enforced at ingress. If omitted or empty, this rule does not apply at ingress.',
  'CiliumNetworkPolicy.spec.egress': 'Egress is a list of EgressRule which are enforced at egress. If omitted or empty, this rule does not apply at egress.',
  'CiliumNetworkPolicy.spec.ingressDeny': 'IngressDeny is a list of IngressDenyRule which are enforced at ingress. Any rule inserted here will be denied regardless of the allowed ingress rules.',
  'CiliumNetworkPolicy.spec.egressDeny': 'EgressDeny is a list of EgressDenyRule which are enforced at egress. Any rule inserted here will be denied regardless of the allowed egress rules.',
  'CiliumNetworkPolicy.spec.labels': 'Labels is a list of optional strings which can be used to re-identify the rule or to store metadata.',
  'CiliumNetworkPolicy.spec.description': 'Description is a free form string, it can be used by the creator of the rule to store human readable explanation of the purpose of this rule.',
  'CiliumNetworkPolicy.spec.enableDefaultDeny': 'EnableDefaultDeny determines whether this policy configures the subject endpoint(s) to have a default deny mode.',
  'CiliumNetworkPolicy.spec.ingress.fromEndpoints': 'FromEndpoints is a list of endpoints identified by an EndpointSelector which are allowed to communicate with the endpoint subject to the rule.',
  'CiliumNetworkPolicy.spec.ingress.fromEntities': 'FromEntities is a list of special entities which the endpoint subject to the rule is allowed to receive connections from (world, cluster, host, remote-node, health, all).',
  'CiliumNetworkPolicy.spec.ingress.fromCIDR': 'FromCIDR is a list of IP blocks which the endpoint subject to the rule is allowed to receive connections from.',
  'CiliumNetworkPolicy.spec.ingress.toPorts': 'ToPorts is a list of destination ports identified by port number and protocol which the endpoint subject to the rule is allowed to receive connections on, with optional L7 rules.',
  'CiliumNetworkPolicy.spec.egress.toEndpoints': 'ToEndpoints is a list of endpoints identified by an EndpointSelector to which the endpoints subject to the rule are allowed to communicate.',
  'CiliumNetworkPolicy.spec.egress.toEntities': 'ToEntities is a list of special entities to which the endpoint subject to the rule is allowed to initiate connections.',
  'CiliumNetworkPolicy.spec.egress.toCIDR': 'ToCIDR is a list of IP blocks which the endpoint subject to the rule is allowed to initiate connections to.',
  'CiliumNetworkPolicy.spec.egress.toFQDNs': 'ToFQDN allows whitelisting DNS names in place of IPs.',
  'CiliumNetworkPolicy.spec.egress.toPorts': 'ToPorts is a list of destination ports identified by port number and protocol which the endpoint subject to the rule is allowed to connect to, with optional L7 rules.',
};

const str = { t: 'string' } as const;
const anyObj = { t: 'any' } as const;
const list = (of: Schema): Schema => ({ t: 'array', of });
const fields = (f: Record<string, Schema>, required: string[] = []): Schema => ({ t: 'object', fields: f, required });
const selector = fields({ matchLabels: { t: 'stringMap' }, matchExpressions: list(fields({ key: str, operator: str, values: { t: 'stringList' } }, ['key', 'operator'])) });
const ports = list(fields({ ports: list(fields({ port: str, endPort: { t: 'int' }, protocol: str })), rules: anyObj }));
const peer = (dir: 'from' | 'to'): Record<string, Schema> => ({
  [`${dir}Endpoints`]: list(selector), [`${dir}Entities`]: { t: 'stringList' }, [`${dir}CIDR`]: { t: 'stringList' },
  [`${dir}CIDRSet`]: list(fields({ cidr: str, except: { t: 'stringList' } })), [`${dir}Requires`]: list(selector), [`${dir}Nodes`]: list(selector),
  toPorts: ports, icmps: list(fields({ fields: list(fields({ type: { t: 'intOrString' }, family: str })) })),
});
const rule = fields({
  description: str, endpointSelector: selector, nodeSelector: selector, labels: list(fields({ key: str, value: str, source: str })),
  enableDefaultDeny: fields({ ingress: { t: 'bool' }, egress: { t: 'bool' } }),
  ingress: list(fields(peer('from'))), ingressDeny: list(fields(peer('from'))),
  egress: list(fields({ ...peer('to'), toFQDNs: list(fields({ matchName: str, matchPattern: str })), toServices: list(anyObj) })),
  egressDeny: list(fields(peer('to'))),
});
const policy = fields({ apiVersion: str, kind: str, metadata: anyObj, spec: rule, specs: list(rule), status: anyObj });

function toOpenApi(s: Schema, path: string): OpenApiSchema {
  const doc = DOCS[path] ? { description: DOCS[path] } : {};
  switch (s.t) {
    case 'string': return { type: 'string', ...doc };
    case 'int': return { type: 'integer', format: 'int32', ...doc };
    case 'bool': return { type: 'boolean', ...doc };
    case 'any': return { type: 'object', 'x-kubernetes-preserve-unknown-fields': true, ...doc };
    case 'intOrString': return { 'x-kubernetes-int-or-string': true, ...doc };
    case 'stringMap': return { type: 'object', additionalProperties: { type: 'string' }, ...doc };
    case 'stringList': return { type: 'array', items: { type: 'string' }, ...doc };
    case 'enum': return { type: 'string', enum: [...s.values], ...doc };
    // A list's items are documented under the list's own path (pod.spec.containers.name).
    case 'array': return { type: 'array', items: { ...toOpenApi(s.of, path), description: undefined }, ...doc };
    case 'object': return {
      type: 'object', ...doc,
      properties: Object.fromEntries(Object.entries(s.fields).map(([k, v]) => [k, toOpenApi(v, `${path}.${k}`)])),
      ...(s.required?.length ? { required: [...s.required] } : {}),
    };
  }
}

/** The schema of a kind as kubectl explain reads it, or undefined for a kind without one. */
export function kindSchema(kind: string, group: string, version: string): OpenApiSchema | undefined {
  const s = kind === 'CiliumNetworkPolicy' || kind === 'CiliumClusterwideNetworkPolicy' ? policy : manifestSchema(kind as KindName);
  if (!s) return undefined;
  // The clusterwide policy shares the namespaced one's field documentation.
  const o = toOpenApi(s, kind === 'CiliumClusterwideNetworkPolicy' ? 'CiliumNetworkPolicy' : kind);
  return { ...o, 'x-kubernetes-group-version-kind': [{ group, version, kind }] };
}
