// NodePort allocation, as the API server's service-node-port-range allocator: a fixed `nodePort` is
// claimed or refused naming the field, a missing one keeps the service's earlier port or takes a random
// free one; the owner of each port is the service ("namespace/name"), so a delete frees its ports.
import { ApiError } from '../control/types.ts';
import { DEFAULT_NODEPORT_RANGE } from '../control/north-south-routing.ts';

/** service-node-port-range: the range the steering rules bring into the datapath. */
export const [NODE_PORT_MIN, NODE_PORT_MAX] = DEFAULT_NODEPORT_RANGE;

export interface NodePortRequest {
  /** The field a refusal names: spec.ports[i].nodePort. */
  path: string;
  /** The port asked for, if any. */
  want?: number;
  /** The port this service port had before (a re-apply or patch that leaves nodePort out keeps it). */
  had?: number;
}

export class NodePortAllocator {
  private readonly owner = new Map<number, string>();

  constructor(private readonly random: () => number = Math.random, readonly min = NODE_PORT_MIN, readonly max = NODE_PORT_MAX) {}

  get range(): string {
    return `${this.min}-${this.max}`;
  }

  /** Marks ports a stored service holds (restore, or a service another node applied). */
  hold(service: string, ports: number[]): void {
    for (const p of ports) this.owner.set(p, service);
  }

  release(service: string): void {
    for (const [p, o] of this.owner) if (o === service) this.owner.delete(p);
  }

  /**
   * The ports a service gets, one per request, without changing anything yet: throws ApiError 422 on a
   * port out of range or held by another service. commit() then records them.
   */
  plan(service: string, requests: NodePortRequest[]): number[] {
    const taken = new Set<number>();
    const free = (p: number) => !taken.has(p) && (this.owner.get(p) ?? service) === service;
    const out: number[] = [];
    for (const r of requests) {
      let port: number | undefined;
      if (r.want !== undefined) {
        if (r.want < this.min || r.want > this.max) {
          throw new ApiError(422, `${r.path}: Invalid value: ${r.want}: provided port is not in the valid range. The range of valid ports is ${this.range}`);
        }
        if (!free(r.want)) throw new ApiError(422, `${r.path}: Invalid value: ${r.want}: provided port is already allocated`);
        port = r.want;
      } else if (r.had !== undefined && free(r.had)) {
        port = r.had;
      } else {
        port = this.randomFree(free);
        if (port === undefined) throw new ApiError(422, `${r.path}: range of valid node ports ${this.range} is exhausted`);
      }
      taken.add(port);
      out.push(port);
    }
    return out;
  }

  commit(service: string, ports: number[]): void {
    this.release(service);
    this.hold(service, ports);
  }

  private randomFree(free: (p: number) => boolean): number | undefined {
    const size = this.max - this.min + 1;
    const start = Math.floor(this.random() * size);
    for (let i = 0; i < size; i++) {
      const p = this.min + ((start + i) % size);
      if (free(p)) return p;
    }
    return undefined;
  }
}
