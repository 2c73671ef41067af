// What the Kubernetes API subset needs from the agent: the stored kinds as Kubernetes objects, writes that go
// through the resource manager's validation, and the pieces the derived kinds (nodes, endpoints,
// ciliumendpoints, cilium-config) are made of. backend-manager.ts adapts today's ResourceManager to it.
import type { KindName } from '../control/resources/kinds.ts';

/** A Kubernetes object as the API serves it (metadata filled: namespace, creationTimestamp, labels). */
export type KubeObject = Record<string, unknown> & {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string>; creationTimestamp?: string; [k: string]: unknown };
};

/** The kinds the backend stores (the resource manager's); everything else the API serves is derived from them. */
export type StoredKind = KindName;

export type ApplyResult = 'created' | 'configured' | 'unchanged';

/** A rejected write: status 400 (invalid, with the field path), 403, 404 or 409, and the manager's message. */
export class BackendError extends Error {
  constructor(readonly statusCode: number, message: string, readonly field?: string) {
    super(message);
  }
}

export interface NodeInfo {
  name: string;
  internalIP: string;
  podCIDR: string;
  /** The node's cilium_host address (CiliumNode's CILIUMINTERNALIP). */
  routerIP: string;
  /** When the agent started (the node's creationTimestamp). */
  createdAt: string;
  agentVersion: string;
  /** The node's labels (kubernetes.io/hostname, roles from node-labels). */
  labels: Record<string, string>;
  osImage?: string;
  kernelVersion?: string;
  /** False once the node's agent stopped renewing its lease (NotReady). */
  ready?: boolean;
}

/** A Cilium endpoint of a pod (for ciliumendpoints); another node's carries no endpoint ID here. */
export interface EndpointInfo {
  id?: number;
  /** The node's InternalIP. */
  nodeIP: string;
  namespace: string;
  pod: string;
  identity: number;
  labels: string[];
  ipv4: string;
  state: string;
  /** Policy enforcement; undefined for another node's endpoint (its agent alone knows). */
  policyIngress?: boolean;
  policyEgress?: boolean;
}

export interface KubeBackend {
  /** Objects of a kind, sorted by namespace and name; namespace undefined = all. */
  list(kind: StoredKind, namespace?: string): KubeObject[];
  get(kind: StoredKind, namespace: string | undefined, name: string): KubeObject | undefined;
  /** Creates or updates one object after validating it (BackendError 400 naming the field). */
  apply(object: KubeObject): Promise<ApplyResult>;
  /** Deletes one object (BackendError 404 when it does not exist). */
  delete(kind: StoredKind, namespace: string | undefined, name: string): Promise<void>;
  /** Calls back after every change in the store (any kind, this node's or another's) until the returned function is called. */
  onChange(listener: () => void): () => void;
  /** The store's revision of the last change seen: a list's resourceVersion. */
  resourceVersion(): string;
  /** coordination.k8s.io Leases held in the store; namespace undefined = all. */
  leases(namespace?: string): KubeObject[];
  /** Path of a pod's log file; undefined for an unknown pod. */
  podLogPath(namespace: string, name: string): string | undefined;
  /** argv that prints (-f: follows) the log of a pod that runs on another node; undefined for this node's pods. */
  remoteLogArgv(namespace: string, name: string, follow: boolean): string[] | undefined;
  /** argv that runs `command` inside the pod (network and UTS namespace); undefined for an unknown pod. */
  podExecArgv(namespace: string, name: string, command: string[]): string[] | undefined;
  /** argv that runs `command` in a node's agent pod: `cilium`, `cilium-dbg` and `hubble` are the ciliary CLI against that node's agent. */
  agentExecArgv(node: string, command: string[]): string[] | undefined;
  /** This agent's node. */
  node(): NodeInfo;
  /** Every node of the cluster (this one included), by name. */
  nodes(): NodeInfo[];
  endpoints(): EndpointInfo[];
  /** Every identity the agent knows, with its labels in `source:key=value` form. */
  identities(): Array<{ id: number; labels: string[] }>;
  /** The agent's configuration, as the cilium-config ConfigMap holds it. */
  config(): Record<string, unknown>;
  /** Stops following the store. */
  close(): void;
}
