// kvstore-opt for etcd as Cilium's: etcd.address (comma-separated URLs) or etcd.config (etcd's client
// YAML: endpoints, trusted-ca-file, key-file, cert-file, username, password).
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';

const DEFAULT_CLIENT_PORT = '2379';
export const ETCD_OPTIONS = ['etcd.address', 'etcd.config'] as const;
/** Keys of Cilium's etcd.config file (etcd's client YAML) that ciliary understands. */
const CONFIG_KEYS = ['endpoints', 'trusted-ca-file', 'ca-file', 'key-file', 'cert-file', 'username', 'password'];

export interface EtcdConnection {
  endpoints: string[];
  credentials?: { rootCertificate: Buffer; privateKey?: Buffer; certChain?: Buffer };
  auth?: { username: string; password: string };
}

/** Endpoints and TLS out of `kvstore-opt` (etcd.address wins over the config file's endpoints). */
export function etcdConnection(opts: Record<string, string>): EtcdConnection {
  for (const k of Object.keys(opts)) {
    if (!(ETCD_OPTIONS as readonly string[]).includes(k)) throw new Error(`kvstore-opt ${k}: unknown option for kvstore etcd (known: ${ETCD_OPTIONS.join(', ')})`);
  }
  const conn: EtcdConnection = opts['etcd.config'] ? readEtcdConfig(opts['etcd.config']) : { endpoints: [] };
  if (opts['etcd.address']) conn.endpoints = opts['etcd.address'].split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (conn.endpoints.length === 0) throw new Error('kvstore etcd needs etcd.address (e.g. etcd.address=http://127.0.0.1:2379) or an etcd.config file with endpoints');
  conn.endpoints = conn.endpoints.map(normalizeEndpoint);
  const secure = conn.endpoints.filter((e) => e.startsWith('https://')).length;
  if (secure !== 0 && secure !== conn.endpoints.length) throw new Error(`kvstore etcd: endpoints mix http:// and https:// (${conn.endpoints.join(', ')})`);
  if (conn.credentials && secure === 0) throw new Error('kvstore etcd: TLS files given but the endpoints are http://; use https:// endpoints');
  return conn;
}

function normalizeEndpoint(e: string): string {
  let u: URL;
  try {
    u = new URL(e);
  } catch {
    throw new Error(`kvstore etcd: endpoint "${e}" is not a URL (expected http://host:port)`);
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.hostname === '' || (u.pathname !== '/' && u.pathname !== '')) {
    throw new Error(`kvstore etcd: endpoint "${e}" must be http:// or https:// host[:port]`);
  }
  return `${u.protocol}//${u.hostname}:${u.port || DEFAULT_CLIENT_PORT}`;
}

function readEtcdConfig(path: string): EtcdConnection {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`kvstore-opt etcd.config: cannot read ${path}: ${(e as Error).message}`);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new Error(`kvstore-opt etcd.config: ${path} is not a YAML mapping`);
  const cfg = doc as Record<string, unknown>;
  for (const k of Object.keys(cfg)) {
    if (!CONFIG_KEYS.includes(k)) throw new Error(`kvstore-opt etcd.config: ${path}: unsupported key "${k}" (supported: ${CONFIG_KEYS.join(', ')})`);
  }
  const text = (k: string): string | undefined => {
    if (cfg[k] === undefined || cfg[k] === null) return undefined;
    if (typeof cfg[k] !== 'string') throw new Error(`kvstore-opt etcd.config: ${path}: "${k}" must be a string`);
    return cfg[k] as string;
  };
  const file = (k: string): Buffer | undefined => {
    const p = text(k);
    try {
      return p === undefined ? undefined : readFileSync(p);
    } catch (e) {
      throw new Error(`kvstore-opt etcd.config: ${path}: ${k} ${p}: ${(e as Error).message}`);
    }
  };
  const eps = cfg.endpoints;
  const endpoints = typeof eps === 'string' ? [eps] : Array.isArray(eps) && eps.every((x) => typeof x === 'string') ? (eps as string[]) : undefined;
  if (!endpoints) throw new Error(`kvstore-opt etcd.config: ${path}: "endpoints" must be a list of URLs`);
  const conn: EtcdConnection = { endpoints };
  const ca = file('trusted-ca-file') ?? file('ca-file');
  const key = file('key-file');
  const cert = file('cert-file');
  if (Boolean(key) !== Boolean(cert)) throw new Error(`kvstore-opt etcd.config: ${path}: key-file and cert-file go together`);
  // grpc's createSsl takes the system roots when the CA is absent.
  if (ca || key) conn.credentials = { rootCertificate: ca as Buffer, privateKey: key, certChain: cert };
  const username = text('username');
  if (username !== undefined) conn.auth = { username, password: text('password') ?? '' };
  return conn;
}
