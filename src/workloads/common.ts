// Small helpers shared by the built-in workloads. Only node: builtins here: every workload starts in a fresh
// process inside a pod, so startup must stay fast.
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { networkInterfaces } from 'node:os';

/** A Go `flag`-style option: `-name v`, `--name v`, `-name=v` or `--name=v`; the last one wins. */
export function flagValue(argv: readonly string[], name: string): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    for (const prefix of [`-${name}`, `--${name}`]) {
      if (a === prefix && i + 1 < argv.length) value = argv[++i];
      else if (a.startsWith(`${prefix}=`)) value = a.slice(prefix.length + 1);
    }
  }
  return value;
}

/** The port from `--port`/`-port`, else the first env var set, else the default; exits 2 on garbage like Go's flag package. */
export function portFrom(argv: readonly string[], envNames: readonly string[], fallback: number): number {
  const raw = flagValue(argv, 'port') ?? envNames.map((n) => process.env[n]).find((v) => v !== undefined && v !== '') ?? String(fallback);
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`invalid port "${raw}"\n`);
    process.exit(2);
  }
  return port;
}

/** Go's `addr:port` rendering of a peer: IPv4-mapped IPv6 addresses unmapped, IPv6 in brackets. */
export function goHostPort(address: string | undefined, port: number | undefined): string {
  let ip = address ?? '';
  if (ip.startsWith('::ffff:') && ip.includes('.')) ip = ip.slice(7);
  return ip.includes(':') ? `[${ip}]:${port ?? 0}` : `${ip}:${port ?? 0}`;
}

export function remoteAddr(socket: Socket): string {
  return goHostPort(socket.remoteAddress, socket.remotePort);
}

/** Every address of every interface, interface by interface (lo first), as Go's net.Interfaces()/Addrs() lists them. */
export function interfaceIPs(): string[] {
  const out: string[] = [];
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) out.push(a.address);
  }
  return out;
}

/** Listen on all addresses (dual stack when available), log `banner(port)` to `log`, and exit 0 on SIGTERM/SIGINT. */
export function serve(server: Server, port: number, banner: (port: number) => string, log: NodeJS.WritableStream = process.stderr): void {
  server.on('error', (err) => {
    process.stderr.write(`listen tcp :${port}: ${err.message}\n`);
    process.exit(1);
  });
  server.listen(port, () => {
    const addr = server.address();
    log.write(`${banner(typeof addr === 'object' && addr ? addr.port : port)}\n`);
  });
  exitOnSignals(() => server.closeAllConnections());
}

export function exitOnSignals(cleanup?: () => void): void {
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.on(sig, () => {
      cleanup?.();
      process.exit(0);
    });
  }
}

/** Read a request body fully. */
export function readBody(req: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** The local-time prefix of Go's log package: `2006/01/02 15:04:05`. */
export function goLogTime(d = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}/${p(d.getMonth() + 1)}/${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
