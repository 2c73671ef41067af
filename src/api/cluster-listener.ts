// The agent API on the node network for the other nodes' agents and CLIs (across machines): every
// request must carry the cluster's token (Authorization: Bearer …), generated once per cluster (0600 file).
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { dirname } from 'node:path';

/** The cluster token in file path, made (mode 0600) when the cluster's first agent starts; a readable-by-others file is refused. */
export function clusterToken(path: string): string {
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true });
    try {
      writeFileSync(path, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  if ((statSync(path).mode & 0o077) !== 0) throw new Error(`cluster token ${path} is readable by others (mode must be 0600)`);
  const token = readFileSync(path, 'utf8').trim();
  if (token.length < 32) throw new Error(`cluster token ${path} is shorter than 32 characters`);
  return token;
}

function authorized(req: IncomingMessage, token: Buffer): boolean {
  const h = req.headers.authorization ?? '';
  if (!h.startsWith('Bearer ')) return false;
  const given = Buffer.from(h.slice(7).trim());
  return given.length === token.length && timingSafeEqual(given, token);
}

/** Listens on address (host:port) with the API's request handler behind the token check; 401 without it. */
export async function listenCluster(address: string, token: string, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Server> {
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon);
  const port = Number(address.slice(colon + 1));
  if (colon <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`cluster-api-address "${address}" is not HOST:PORT`);
  const want = Buffer.from(token);
  const server = createServer((req, res) => {
    if (authorized(req, want)) return handler(req, res);
    res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer realm="ciliary cluster"' });
    res.end(JSON.stringify({ error: 'cluster credential required: Authorization: Bearer <token from the cluster token file>' }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
