// Local ports for the proxy's upstream sockets, from a range the kernel never hands out itself.
import { UPSTREAM_PORT_MAX, UPSTREAM_PORT_MIN } from '../../maps/cilium/proxy.ts';

export class UpstreamPorts {
  private next = UPSTREAM_PORT_MIN;
  private readonly used = new Set<number>();

  take(): number {
    for (let i = 0; i <= UPSTREAM_PORT_MAX - UPSTREAM_PORT_MIN; i++) {
      const p = this.next;
      this.next = p >= UPSTREAM_PORT_MAX ? UPSTREAM_PORT_MIN : p + 1;
      if (!this.used.has(p)) {
        this.used.add(p);
        return p;
      }
    }
    throw new Error('no free upstream port for the L7 proxy');
  }

  give(port: number): void {
    this.used.delete(port);
  }
}
