// Validation of manifests against the fields ciliary knows: an unknown field, a wrong type or a missing
// required field is an error naming the field path (`spec.template.spec.containers[0].imag`), which the
// CLI turns into a line of the file.
import { parsePolicy, PolicyError } from '../../policy/index.ts';
import { kindInfo, KINDS, type KindInfo } from './kinds.ts';
import { tryParseCidr, tryParseIPv4 } from '../../wire/ip-text.ts';
import { NODE_PORT_MAX, NODE_PORT_MIN } from '../../nat/node-ports.ts';
import { validateEndpointSlice, validateEndpointsSubsets } from './user-endpoints.ts';

/** A manifest problem: the field path (as yamlLineMapper reads it) and what is wrong. */
export class FieldError extends Error {
  /** status: 400 for a wrong manifest, 422 for a valid one ciliary cannot do yet. */
  constructor(readonly path: string, readonly reason: string, readonly status = 400) {
    super(path ? `${path}: ${reason}` : reason);
  }
}

export type Schema =
  | { t: 'string' | 'int' | 'bool' | 'any' | 'intOrString' | 'stringMap' | 'stringList' }
  | { t: 'enum'; values: readonly string[] }
  | { t: 'object'; fields: Record<string, Schema>; required?: readonly string[] }
  | { t: 'array'; of: Schema; min?: number };

const S = { t: 'string' } as const;
const I = { t: 'int' } as const;
const B = { t: 'bool' } as const;
const ANY = { t: 'any' } as const;
const MAP = { t: 'stringMap' } as const;
const LIST = { t: 'stringList' } as const;
const obj = (fields: Record<string, Schema>, required: readonly string[] = []): Schema => ({ t: 'object', fields, required });
const arr = (of: Schema, min?: number): Schema => ({ t: 'array', of, min });
const oneOf = (...values: string[]): Schema => ({ t: 'enum', values });

/** Bookkeeping fields a `get -o yaml` output carries; accepted and ignored. */
const META_IGNORED = { uid: S, resourceVersion: S, creationTimestamp: ANY, generation: I, managedFields: ANY, ownerReferences: ANY, finalizers: ANY, selfLink: S };
const metadata = (namespaced: boolean) => obj({ name: S, ...(namespaced ? { namespace: S } : {}), labels: MAP, annotations: MAP, ...META_IGNORED }, ['name']);

const selector = obj({
  matchLabels: MAP,
  matchExpressions: arr(obj({ key: S, operator: oneOf('In', 'NotIn', 'Exists', 'DoesNotExist'), values: LIST }, ['key', 'operator'])),
});

const container = obj({
  name: S, image: S, command: LIST, args: LIST,
  env: arr(obj({ name: S, value: S, valueFrom: ANY }, ['name'])),
  ports: arr(obj({ name: S, containerPort: I, protocol: oneOf('TCP', 'UDP', 'SCTP'), hostPort: I, hostIP: S }, ['containerPort'])),
  // Accepted so real manifests apply; they do not change what runs.
  imagePullPolicy: S, resources: ANY, readinessProbe: ANY, livenessProbe: ANY, startupProbe: ANY, securityContext: ANY,
  volumeMounts: ANY, workingDir: S, stdin: B, stdinOnce: B, tty: B, lifecycle: ANY, terminationMessagePath: S,
  terminationMessagePolicy: S, envFrom: ANY,
}, ['name', 'image']);

const affinityTerm = obj({ labelSelector: selector, topologyKey: S, namespaces: LIST, namespaceSelector: ANY }, ['topologyKey']);

const podSpec = obj({
  containers: arr(container, 1),
  nodeName: S,
  restartPolicy: oneOf('Always', 'OnFailure', 'Never'),
  hostname: S,
  affinity: obj({
    podAntiAffinity: obj({ requiredDuringSchedulingIgnoredDuringExecution: arr(affinityTerm), preferredDuringSchedulingIgnoredDuringExecution: ANY }),
    podAffinity: obj({ requiredDuringSchedulingIgnoredDuringExecution: arr(affinityTerm), preferredDuringSchedulingIgnoredDuringExecution: ANY }),
    nodeAffinity: ANY,
  }),
  nodeSelector: MAP,
  // Accepted and ignored (no kubelet).
  terminationGracePeriodSeconds: I, tolerations: ANY, serviceAccountName: S, serviceAccount: S, dnsPolicy: S, dnsConfig: ANY,
  volumes: ANY, securityContext: ANY, automountServiceAccountToken: B, priorityClassName: S, imagePullSecrets: ANY, enableServiceLinks: B,
  subdomain: S, schedulerName: S, initContainers: ANY, topologySpreadConstraints: ANY,
}, ['containers']);

const servicePort = obj({ name: S, port: I, targetPort: { t: 'intOrString' }, protocol: oneOf('TCP', 'UDP'), nodePort: I, appProtocol: S }, ['port']);

const SCHEMAS: Partial<Record<KindInfo['kind'], (k: KindInfo) => Schema>> = {
  Namespace: () => obj({ apiVersion: S, kind: S, metadata: metadata(false), spec: ANY, status: ANY }, ['metadata']),
  Pod: () => obj({ apiVersion: S, kind: S, metadata: metadata(true), spec: podSpec, status: ANY }, ['metadata', 'spec']),
  Deployment: () => obj({
    apiVersion: S, kind: S, metadata: metadata(true), status: ANY,
    spec: obj({
      replicas: I, selector,
      template: obj({ metadata: obj({ name: S, namespace: S, labels: MAP, annotations: MAP, creationTimestamp: ANY }), spec: podSpec }, ['spec']),
      strategy: ANY, revisionHistoryLimit: I, minReadySeconds: I, progressDeadlineSeconds: I, paused: B,
    }, ['selector', 'template']),
  }, ['metadata', 'spec']),
  Service: () => obj({
    apiVersion: S, kind: S, metadata: metadata(true), status: ANY,
    spec: obj({
      type: oneOf('ClusterIP', 'NodePort', 'LoadBalancer'), selector: MAP, ports: arr(servicePort), clusterIP: S, clusterIPs: LIST,
      externalIPs: LIST, sessionAffinity: oneOf('None', 'ClientIP'), sessionAffinityConfig: obj({ clientIP: obj({ timeoutSeconds: I }) }),
      ipFamilies: ANY, ipFamilyPolicy: S, internalTrafficPolicy: S, externalTrafficPolicy: oneOf('Cluster', 'Local'), loadBalancerIP: S, loadBalancerClass: S,
      loadBalancerSourceRanges: LIST, allocateLoadBalancerNodePorts: B, publishNotReadyAddresses: B, healthCheckNodePort: I,
    }),
  }, ['metadata', 'spec']),
  Endpoints: () => obj({
    apiVersion: S, kind: S, metadata: metadata(true),
    subsets: arr(obj({
      addresses: arr(obj({ ip: S, hostname: S, nodeName: S, targetRef: ANY }, ['ip'])),
      notReadyAddresses: arr(obj({ ip: S, hostname: S, nodeName: S, targetRef: ANY }, ['ip'])),
      ports: arr(obj({ name: S, port: I, protocol: oneOf('TCP', 'UDP', 'SCTP'), appProtocol: S }, ['port'])),
    })),
  }, ['metadata']),
  EndpointSlice: () => obj({
    apiVersion: S, kind: S, metadata: metadata(true), addressType: oneOf('IPv4'),
    endpoints: arr(obj({ addresses: LIST, conditions: obj({ ready: B, serving: B, terminating: B }), hostname: S, nodeName: S, zone: S, targetRef: ANY, hints: ANY }, ['addresses'])),
    ports: arr(obj({ name: S, port: I, protocol: oneOf('TCP', 'UDP', 'SCTP'), appProtocol: S })),
  }, ['metadata', 'addressType', 'endpoints']),
  CiliumLoadBalancerIPPool: () => obj({
    apiVersion: S, kind: S, metadata: metadata(false), status: ANY,
    spec: obj({
      blocks: arr(obj({ cidr: S, start: S, stop: S })),
      cidrs: arr(obj({ cidr: S, start: S, stop: S })),
      allowFirstLastIPs: oneOf('Yes', 'No'), serviceSelector: selector, disabled: B,
    }),
  }, ['metadata', 'spec']),
  CiliumL2AnnouncementPolicy: () => obj({
    apiVersion: S, kind: S, metadata: metadata(false), status: ANY,
    spec: obj({ serviceSelector: selector, nodeSelector: selector, interfaces: LIST, externalIPs: B, loadBalancerIPs: B }),
  }, ['metadata', 'spec']),
};

/** The fields ciliary accepts for a kind (kubectl explain shows them); undefined for the policy kinds, which parsePolicy checks. */
export const manifestSchema = (kind: KindInfo['kind']): Schema | undefined => SCHEMAS[kind]?.(kindInfo(kind)!);

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const at = (path: string, key: string) => (path ? `${path}.${key}` : key);

function check(s: Schema, v: unknown, path: string): void {
  const fail = (reason: string): never => { throw new FieldError(path, reason); };
  switch (s.t) {
    case 'any': return;
    case 'string': if (typeof v !== 'string') fail(`must be a string, not ${describe(v)}`); return;
    case 'int': if (typeof v !== 'number' || !Number.isInteger(v)) fail(`must be an integer, not ${describe(v)}`); return;
    case 'bool': if (typeof v !== 'boolean') fail(`must be true or false, not ${describe(v)}`); return;
    case 'intOrString': if (typeof v !== 'string' && !(typeof v === 'number' && Number.isInteger(v))) fail(`must be an integer or a string, not ${describe(v)}`); return;
    case 'enum': if (typeof v !== 'string' || !s.values.includes(v)) fail(`must be one of ${s.values.join(', ')}, not ${JSON.stringify(v)}`); return;
    case 'stringMap':
      if (!isObj(v)) fail(`must be a mapping of strings, not ${describe(v)}`);
      for (const [k, x] of Object.entries(v as object)) if (typeof x !== 'string') throw new FieldError(at(path, k), `must be a string, not ${describe(x)} (quote it)`);
      return;
    case 'stringList':
      if (!Array.isArray(v)) fail(`must be a list of strings, not ${describe(v)}`);
      (v as unknown[]).forEach((x, i) => { if (typeof x !== 'string') throw new FieldError(`${path}[${i}]`, `must be a string, not ${describe(x)}`); });
      return;
    case 'array':
      if (!Array.isArray(v)) fail(`must be a list, not ${describe(v)}`);
      if (s.min && (v as unknown[]).length < s.min) fail(`needs at least ${s.min} item${s.min > 1 ? 's' : ''}`);
      (v as unknown[]).forEach((x, i) => check(s.of, x, `${path}[${i}]`));
      return;
    case 'object': {
      if (!isObj(v)) fail(`must be a mapping, not ${describe(v)}`);
      const o = v as Record<string, unknown>;
      for (const k of Object.keys(o)) {
        if (!(k in s.fields)) throw new FieldError(at(path, k), `unknown field "${k}"`);
      }
      for (const r of s.required ?? []) if (o[r] === undefined || o[r] === null) throw new FieldError(at(path, r), 'required field is missing');
      for (const [k, x] of Object.entries(o)) if (x !== null && x !== undefined) check(s.fields[k], x, at(path, k));
    }
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)}`;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Checks kind, apiVersion and every field; returns the kind's info. Throws FieldError. */
export function validateManifest(o: unknown): KindInfo {
  if (!isObj(o)) throw new FieldError('', `an object must be a mapping, not ${describe(o)}`);
  if (o.kind === undefined) throw new FieldError('kind', 'required field is missing');
  if (typeof o.kind !== 'string') throw new FieldError('kind', 'must be a string');
  if (o.apiVersion === undefined) throw new FieldError('apiVersion', 'required field is missing');
  if (typeof o.apiVersion !== 'string') throw new FieldError('apiVersion', 'must be a string');
  const info = kindInfo(o.kind);
  if (!info) throw new FieldError('kind', `no matches for kind "${o.kind}" in version "${o.apiVersion}" (ciliary knows ${KINDS.map((k) => k.kind).join(', ')})`);
  if (!info.apiVersions.includes(o.apiVersion)) throw new FieldError('apiVersion', `no matches for kind "${o.kind}" in version "${o.apiVersion}" (use ${info.apiVersions.join(' or ')})`);
  if (info.kind === 'Lease') throw new FieldError('kind', 'leases are held by the agents (L2 announcements), not applied', 405);
  if (info.kind === 'CiliumNetworkPolicy' || info.kind === 'CiliumClusterwideNetworkPolicy' || info.kind === 'NetworkPolicy') {
    try {
      parsePolicy(o);
    } catch (e) {
      if (e instanceof PolicyError) throw new FieldError(e.path === '(document)' ? '' : e.path, e.reason);
      throw e;
    }
    return info;
  }
  check(SCHEMAS[info.kind]!(info), o, '');
  const meta = o.metadata as { name: string; namespace?: string };
  const nameRe = info.kind === 'Pod' || info.kind === 'Deployment' ? DNS_SUBDOMAIN : DNS_LABEL;
  if (!nameRe.test(meta.name) || meta.name.length > 63) throw new FieldError('metadata.name', `"${meta.name}" must be a DNS-1123 ${nameRe === DNS_LABEL ? 'label' : 'name'} of at most 63 characters`);
  if (meta.namespace !== undefined && !DNS_LABEL.test(meta.namespace)) throw new FieldError('metadata.namespace', `"${meta.namespace}" must be a DNS-1123 label`);
  validateSemantics(info, o);
  return info;
}

function validateSemantics(info: KindInfo, o: Record<string, unknown>): void {
  const spec = (o.spec ?? {}) as Record<string, unknown>;
  if (info.kind === 'Pod') validatePodSpec(spec, 'spec');
  if (info.kind === 'Deployment') {
    const replicas = spec.replicas as number | undefined;
    if (replicas !== undefined && (replicas < 0 || replicas > 100)) throw new FieldError('spec.replicas', `must be between 0 and 100, not ${replicas}`);
    const tmpl = spec.template as { metadata?: { labels?: Record<string, string> }; spec: Record<string, unknown> };
    const sel = spec.selector as { matchLabels?: Record<string, string>; matchExpressions?: unknown[] };
    if (!sel.matchLabels && !sel.matchExpressions) throw new FieldError('spec.selector', 'empty selector is invalid for deployment');
    if (!selectorMatches(sel as LabelSelector, tmpl.metadata?.labels ?? {})) throw new FieldError('spec.template.metadata.labels', '`selector` does not match template `labels`');
    const rp = tmpl.spec.restartPolicy;
    if (rp !== undefined && rp !== 'Always') throw new FieldError('spec.template.spec.restartPolicy', `Unsupported value: "${String(rp)}": supported values: "Always"`);
    validatePodSpec(tmpl.spec, 'spec.template.spec');
  }
  if (info.kind === 'Service') {
    const ports = (spec.ports ?? []) as Array<Record<string, unknown>>;
    if (!ports.length && spec.selector) throw new FieldError('spec.ports', 'required field is missing');
    const names = new Set<string>();
    const portProtos = new Set<string>();
    ports.forEach((p, i) => {
      const portProto = `${String(p.port)}/${String(p.protocol ?? 'TCP')}`;
      if (portProtos.has(portProto)) throw new FieldError(`spec.ports[${i}]`, `duplicate port ${portProto}`);
      portProtos.add(portProto);
      const path = `spec.ports[${i}]`;
      if ((p.port as number) < 1 || (p.port as number) > 65535) throw new FieldError(`${path}.port`, `must be between 1 and 65535, not ${String(p.port)}`);
      if (typeof p.targetPort === 'number' && (p.targetPort < 1 || p.targetPort > 65535)) throw new FieldError(`${path}.targetPort`, `must be between 1 and 65535, not ${p.targetPort}`);
      if (p.nodePort !== undefined && spec.type !== 'NodePort' && spec.type !== 'LoadBalancer') throw new FieldError(`${path}.nodePort`, 'may not be used when `type` is \'ClusterIP\'');
      if (p.nodePort !== undefined) {
        const np = p.nodePort as number;
        if (np < NODE_PORT_MIN || np > NODE_PORT_MAX) throw new FieldError(`${path}.nodePort`, `Invalid value: ${np}: provided port is not in the valid range. The range of valid ports is ${NODE_PORT_MIN}-${NODE_PORT_MAX}`, 422);
        const twin = ports.findIndex((q, j) => j < i && q.nodePort === np && (q.protocol ?? 'TCP') === (p.protocol ?? 'TCP'));
        if (twin >= 0) throw new FieldError(`${path}.nodePort`, `Duplicate value: ${np} (also spec.ports[${twin}].nodePort)`);
      }
      if (ports.length > 1 && !p.name) throw new FieldError(`${path}.name`, 'required when there are several ports');
      if (p.name) {
        if (names.has(p.name as string)) throw new FieldError(`${path}.name`, `duplicate port name "${String(p.name)}"`);
        names.add(p.name as string);
      }
    });
    if (spec.externalTrafficPolicy !== undefined && spec.type !== 'NodePort' && spec.type !== 'LoadBalancer') {
      throw new FieldError('spec.externalTrafficPolicy', 'may only be set when `type` is \'NodePort\' or \'LoadBalancer\'');
    }
    ((spec.externalIPs ?? []) as string[]).forEach((ip, i) => {
      if (tryParseIPv4(ip) === undefined) throw new FieldError(`spec.externalIPs[${i}]`, `Invalid value: "${ip}": must be a valid IPv4 address`);
    });
    if (spec.sessionAffinityConfig !== undefined && spec.sessionAffinity !== 'ClientIP') throw new FieldError('spec.sessionAffinityConfig', 'must not be set unless sessionAffinity is ClientIP');
    const t = (spec.sessionAffinityConfig as { clientIP?: { timeoutSeconds?: number } } | undefined)?.clientIP?.timeoutSeconds;
    if (t !== undefined && (t < 1 || t > 86400)) throw new FieldError('spec.sessionAffinityConfig.clientIP.timeoutSeconds', `must be between 1 and 86400, not ${t}`);
  }
  if (info.kind === 'Endpoints') validateEndpointsSubsets(o.subsets);
  if (info.kind === 'EndpointSlice') validateEndpointSlice(o);
  if (info.kind === 'CiliumL2AnnouncementPolicy') validateL2Policy(spec);
  if (info.kind === 'CiliumLoadBalancerIPPool') {
    const blocks = [...((spec.blocks ?? []) as Array<Record<string, string>>)];
    const key = spec.blocks ? 'blocks' : 'cidrs';
    if (spec.blocks === undefined && spec.cidrs === undefined) throw new FieldError('spec.blocks', 'required field is missing');
    const list = (spec[key] ?? []) as Array<Record<string, string>>;
    list.forEach((b, i) => {
      const path = `spec.${key}[${i}]`;
      if (b.cidr !== undefined) {
        if (b.start !== undefined || b.stop !== undefined) throw new FieldError(path, 'give cidr, or start and stop, not both');
        if (!tryParseCidr(b.cidr)) throw new FieldError(`${path}.cidr`, `"${b.cidr}" is not an IPv4 CIDR`);
      } else {
        if (b.start === undefined) throw new FieldError(`${path}.start`, 'required (or cidr)');
        if (tryParseIPv4(b.start) === undefined) throw new FieldError(`${path}.start`, `"${b.start}" is not an IPv4 address`);
        const stop = b.stop ?? b.start;
        if (tryParseIPv4(stop) === undefined) throw new FieldError(`${path}.stop`, `"${stop}" is not an IPv4 address`);
        if (tryParseIPv4(stop)! < tryParseIPv4(b.start)!) throw new FieldError(`${path}.stop`, 'must not be before start');
      }
    });
    void blocks;
  }
}

function validateL2Policy(spec: Record<string, unknown>): void {
  ((spec.interfaces ?? []) as string[]).forEach((r, i) => {
    try {
      new RegExp(r);
    } catch (e) {
      throw new FieldError(`spec.interfaces[${i}]`, `"${r}" is not a regular expression: ${(e as Error).message}`);
    }
  });
}

function validatePodSpec(spec: Record<string, unknown>, path: string): void {
  const containers = spec.containers as Array<Record<string, unknown>>;
  if (containers.length > 1) throw new FieldError(`${path}.containers[1]`, 'ciliary runs one container per pod');
  const c = containers[0];
  const ports = (c.ports ?? []) as Array<Record<string, unknown>>;
  ports.forEach((p, i) => {
    const pp = `${path}.containers[0].ports[${i}]`;
    if ((p.containerPort as number) < 1 || (p.containerPort as number) > 65535) throw new FieldError(`${pp}.containerPort`, `must be between 1 and 65535, not ${String(p.containerPort)}`);
    if (p.protocol === 'SCTP') throw new FieldError(`${pp}.protocol`, 'SCTP is not supported (TCP or UDP)');
    if (p.hostPort !== undefined && ((p.hostPort as number) < 1 || (p.hostPort as number) > 65535)) throw new FieldError(`${pp}.hostPort`, `must be between 1 and 65535, not ${String(p.hostPort)}`);
    if (p.name !== undefined && !/^(?=.{1,15}$)(?=.*[a-z])[a-z0-9]+(?:-[a-z0-9]+)*$/.test(p.name as string)) throw new FieldError(`${pp}.name`, `"${String(p.name)}" must be an IANA service name (at most 15 lowercase letters, digits and '-')`);
  });
  (c.env as Array<Record<string, unknown>> | undefined ?? []).forEach((e, i) => {
    if (e.valueFrom !== undefined) throw new FieldError(`${path}.containers[0].env[${i}].valueFrom`, 'valueFrom is not supported (give value)');
  });
  if (spec.hostname !== undefined && !DNS_LABEL.test(spec.hostname as string)) throw new FieldError(`${path}.hostname`, `"${String(spec.hostname)}" must be a DNS-1123 label`);
}

// ---- label selectors (deployments, anti-affinity, pool service selectors) ----

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{ key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }>;
}

export function selectorMatches(sel: LabelSelector, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of sel.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const inValues = has && (e.values ?? []).includes(labels[e.key]);
    if (e.operator === 'In' && !inValues) return false;
    if (e.operator === 'NotIn' && inValues) return false;
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
  }
  return true;
}
