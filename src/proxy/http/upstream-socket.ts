// The proxy's upstream socket. Its source is the router IP and a port the datapath maps back to the
// client (cilium_proxy4_upstream), so the server sees the client's own address and port.
import { connect, type Socket } from 'node:net';

export function connectUpstream(routerIP: string, localPort: number, server: string, serverPort: number): Socket {
  return connect({ host: server, port: serverPort, localAddress: routerIP, localPort, noDelay: true });
}
