// A gRPC server without TLS on a listen address (":4244", "127.0.0.1:0"), with the standard health
// service that `hubble status` checks first ("Healthcheck (via …): Ok").
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { parseListenAddress } from '../../web/server.ts';
import { OBSERVER_SERVICE_NAME, observerService } from './proto.ts';

export interface GrpcServer {
  /** host:port actually bound (port 0 resolved). */
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Serves observer.Observer with `handlers` on `address` (the value of config `key`); rejects when it is bad or busy. */
export async function serveObserver(key: string, address: string, handlers: grpc.UntypedServiceImplementation, onClose: () => void = () => {}): Promise<GrpcServer> {
  let parsed: { host?: string; port: number };
  try {
    parsed = parseListenAddress(address);
  } catch {
    throw new Error(`${key}: "${address}" is not host:port or :port`);
  }
  const { host = '0.0.0.0', port } = parsed;
  const server = new grpc.Server();
  server.addService(observerService, handlers);
  new HealthImplementation({ '': 'SERVING', [OBSERVER_SERVICE_NAME]: 'SERVING' }).addToServer(server);
  const target = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  const bound = await new Promise<number>((resolve, reject) => {
    server.bindAsync(target, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
  return {
    address: host.includes(':') ? `[${host}]:${bound}` : `${host}:${bound}`,
    port: bound,
    close: async () => {
      onClose();
      // Followers never end on their own: cut them rather than wait.
      server.forceShutdown();
    },
  };
}

/** A handler's error as the gRPC status a client sees. */
export function grpcError(code: grpc.status, details: string): grpc.ServiceError {
  return Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() });
}

/** The version header Hubble's servers send (the CLI warns when it is newer than itself). */
export function versionHeader(key: 'hubble-server-version' | 'hubble-relay-version', version: string): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set(key, version);
  return md;
}
