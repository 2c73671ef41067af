// The API server's certificates and the admin kubeconfig: a CA (kept across restarts), a serving certificate
// for the listen address, and a kubernetes-admin client certificate plus bearer token, all mode 0600.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';

export interface KubePki {
  ca: string;
  serverCert: string;
  serverKey: string;
  token: string;
  kubeconfigPath: string;
}

const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });

function write(path: string, text: string): void {
  writeFileSync(path, text, { mode: 0o600 });
  chmodSync(path, 0o600);
}

/** Signs a new EC key's certificate with the CA; `ext` is an openssl extension section body. */
function issue(dir: string, name: string, subject: string, ext: string): void {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const extFile = join(dir, `${name}.ext`);
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
  openssl(['req', '-new', '-key', key, '-subj', subject, '-out', csr]);
  write(extFile, ext);
  openssl(['x509', '-req', '-in', csr, '-CA', join(dir, 'ca.crt'), '-CAkey', join(dir, 'ca.key'), '-CAcreateserial',
    '-days', '3650', '-sha256', '-extfile', extFile, '-out', join(dir, `${name}.crt`)]);
  chmodSync(key, 0o600);
  chmodSync(join(dir, `${name}.crt`), 0o600);
  rmSync(csr);
  rmSync(extFile);
}

/** Host part of a listen address ("192.168.10.100:6443", ":6443", "[::1]:6443"). */
export function listenHost(address: string): string {
  const i = address.lastIndexOf(':');
  const host = (i < 0 ? address : address.slice(0, i)).replace(/^\[|\]$/g, '');
  return host || '0.0.0.0';
}

/** Writes (or reuses) the PKI under `<stateDir>/kube` and the kubeconfig for `https://<address>`; `extraIPs` are more names of the server. */
export function ensurePki(stateDir: string, address: string, extraIPs: string[] = []): KubePki {
  const dir = join(stateDir, 'kube');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (!existsSync(join(dir, 'ca.crt')) || !existsSync(join(dir, 'ca.key'))) {
    openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', join(dir, 'ca.key')]);
    openssl(['req', '-x509', '-new', '-key', join(dir, 'ca.key'), '-subj', '/CN=kubernetes', '-days', '3650', '-sha256',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', join(dir, 'ca.crt')]);
    chmodSync(join(dir, 'ca.key'), 0o600);
    chmodSync(join(dir, 'ca.crt'), 0o600);
  }
  const host = listenHost(address);
  const ips = [...new Set(['127.0.0.1', ...extraIPs, ...(host === '0.0.0.0' || host === '::' ? [] : /^[\d.]+$|:/.test(host) ? [host] : [])])];
  const names = ['kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local', 'localhost',
    ...(/^[\d.]+$|:/.test(host) ? [] : [host])];
  // The serving certificate follows the address; the CA and client credentials stay valid across restarts.
  issue(dir, 'apiserver', '/CN=kube-apiserver',
    `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=${[...names.map((n) => `DNS:${n}`), ...ips.map((ip) => `IP:${ip}`)].join(',')}\n`);
  if (!existsSync(join(dir, 'admin.crt'))) {
    issue(dir, 'admin', '/O=system:masters/CN=kubernetes-admin', 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n');
  }
  const tokenPath = join(dir, 'token');
  if (!existsSync(tokenPath)) write(tokenPath, randomBytes(24).toString('hex') + '\n');
  const token = readFileSync(tokenPath, 'utf8').trim();
  const ca = readFileSync(join(dir, 'ca.crt'), 'utf8');
  const b64 = (f: string) => readFileSync(join(dir, f)).toString('base64');
  const serverHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  const port = address.slice(address.lastIndexOf(':') + 1) || '6443';
  const kubeconfig = {
    apiVersion: 'v1', kind: 'Config', preferences: {},
    clusters: [{ name: 'kubernetes', cluster: { 'certificate-authority-data': b64('ca.crt'), server: `https://${serverHost}:${port}` } }],
    users: [{ name: 'kubernetes-admin', user: { 'client-certificate-data': b64('admin.crt'), 'client-key-data': b64('admin.key') } }],
    contexts: [{ name: 'kubernetes-admin@kubernetes', context: { cluster: 'kubernetes', user: 'kubernetes-admin' } }],
    'current-context': 'kubernetes-admin@kubernetes',
  };
  const kubeconfigPath = join(dir, 'admin.conf');
  write(kubeconfigPath, stringify(kubeconfig));
  return { ca, serverCert: readFileSync(join(dir, 'apiserver.crt'), 'utf8'), serverKey: readFileSync(join(dir, 'apiserver.key'), 'utf8'), token, kubeconfigPath };
}
