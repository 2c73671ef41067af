// `kubectl exec` over WebSocket (v5.channel.k8s.io, v4): one binary frame per chunk, first byte the stream
// (0 stdin, 1 stdout, 2 stderr, 3 status, 4 resize, 255 close); the command runs where `ciliary exec` runs it.
import { spawn } from 'node:child_process';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import type { KubeResource } from './resources.ts';

const PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'];
const STDIN = 0;
const STDOUT = 1;
const STDERR = 2;
const STATUS = 3;
const CLOSE = 255;

export interface ExecDeps {
  authenticated(req: IncomingMessage): boolean;
  route(path: string): { resource: KubeResource; namespace?: string; name?: string; subresource?: string } | undefined;
  argv(namespace: string, name: string, command: string[]): string[] | undefined;
  notFound(name: string): Record<string, unknown>;
  log: Logger;
}

function refuse(socket: Duplex, status: number, reason: string, body: unknown): void {
  const text = JSON.stringify(body);
  socket.end(`HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`);
}

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The exit Status on stream 3, as the kubelet reports it (kubectl exits with the code). */
function exitStatus(code: number | null, signal: NodeJS.Signals | null): Record<string, unknown> {
  const n = code ?? (signal ? 128 : 1);
  if (n === 0) return { metadata: {}, status: 'Success' };
  return {
    metadata: {}, status: 'Failure', message: `command terminated with non-zero exit code: exit status ${n}`, reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(n) }] },
  };
}

export function attachExec(server: Server, d: ExecDeps): void {
  const wss = new WebSocketServer({ noServer: true, handleProtocols: (offered) => PROTOCOLS.find((p) => offered.has(p)) ?? false });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (!d.authenticated(req)) return refuse(socket, 401, 'Unauthorized', { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 });
    const url = new URL(req.url ?? '/', 'https://localhost');
    const route = d.route(url.pathname);
    const command = url.searchParams.getAll('command');
    if (!route || route.resource.kind !== 'Pod' || route.subresource !== 'exec' || !route.name) {
      return refuse(socket, 404, 'Not Found', { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'the server could not find the requested resource', reason: 'NotFound', code: 404 });
    }
    const inPod = d.argv(route.namespace ?? 'default', route.name, command);
    if (!inPod) return refuse(socket, 404, 'Not Found', d.notFound(route.name));
    // A terminal for -t: script(1) gives the command a pty; the pty's fds work across the pod's namespaces.
    const argv = url.searchParams.get('tty') === 'true' ? ['script', '-qfec', inPod.map(shellQuote).join(' '), '/dev/null'] : inPod;
    if (!command.length) return refuse(socket, 400, 'Bad Request', { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'you must specify at least 1 command', reason: 'BadRequest', code: 400 });
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
      return refuse(socket, 400, 'Bad Request', { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'exec is served over WebSocket (v5.channel.k8s.io) only', reason: 'BadRequest', code: 400 });
    }
    wss.handleUpgrade(req, socket, head, (ws) => run(ws, argv, url.searchParams.get('stdin') === 'true', d.log));
  });
}

function run(ws: WebSocket, argv: string[], stdin: boolean, log: Logger): void {
  const child = spawn(argv[0], argv.slice(1), { stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  const frame = (stream: number, data: Buffer | string) => {
    if (ws.readyState === ws.OPEN) ws.send(Buffer.concat([Buffer.from([stream]), Buffer.isBuffer(data) ? data : Buffer.from(data)]));
  };
  child.stdout!.on('data', (b: Buffer) => frame(STDOUT, b));
  child.stderr!.on('data', (b: Buffer) => frame(STDERR, b));
  child.on('error', (e) => {
    frame(STDERR, `${e.message}\n`);
    log.warn({ err: e.message }, 'kube exec: cannot run the command');
  });
  child.on('close', (code, signal) => {
    frame(STATUS, JSON.stringify(exitStatus(code, signal)));
    ws.close(1000);
  });
  ws.on('message', (data: Buffer) => {
    if (!data.length) return;
    if (data[0] === STDIN && child.stdin?.writable) child.stdin.write(data.subarray(1));
    else if (data[0] === CLOSE && data[1] === STDIN) child.stdin?.end();
  });
  child.stdin?.on('error', () => { /* the command exited before reading its input */ });
  ws.on('close', () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
}
