// Container images → what ciliary runs for them. Well-known images from Cilium's docs and the seeds map to built-in
// workloads (small TS programs in this folder); shell/tool images run their `command` on the host's binaries, and
// stay idle without one. Kubernetes semantics: `command` replaces the image's entrypoint, `args` its default
// arguments, and $(VAR) in both expands from the container's env.
import { accessSync, constants } from 'node:fs';
import { basename, delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface ContainerLike {
  image: string;
  command?: string[];
  args?: string[];
  ports?: Array<{ containerPort: number; name?: string; protocol?: string }>;
  env?: Array<{ name: string; value?: string }>;
}

export interface Workload {
  /** What to exec inside the pod's namespace: a host binary, or node + the tsx loader + a built-in workload. */
  argv: string[];
  /** The container's env (values expanded); the runner adds PATH/HOSTNAME. */
  env: Record<string, string>;
  /** The built-in workload, when the argv runs one. */
  builtin?: BuiltinName;
  /** A remark worth showing (e.g. a stand-in binary). */
  note?: string;
}

export type BuiltinName = 'whoami' | 'deathstar' | 'nginx' | 'json-mock' | 'idle' | 'echo-server' | 'coredns';

type Kind = 'whoami' | 'deathstar' | 'nginx' | 'json-mock' | 'shell' | 'curl' | 'iperf3' | 'netperf' | 'echo' | 'coredns';

/** Image repositories (registry and `library/` stripped) ciliary knows, with what they become. */
export const BUILTIN_IMAGES: ReadonlyArray<{ repositories: string[]; kind: Kind; runs: string }> = [
  { repositories: ['traefik/whoami', 'containous/whoami'], kind: 'whoami', runs: 'whoami.ts on :80 (args such as --port/--name passed through)' },
  { repositories: ['cilium/starwars'], kind: 'deathstar', runs: 'deathstar.ts on :80 (the Star Wars demo API)' },
  { repositories: ['cilium/json-mock'], kind: 'json-mock', runs: 'json-mock.ts on :80 (tiefighter/xwing in http-sw-app.yaml)' },
  { repositories: ['nginx'], kind: 'nginx', runs: 'nginx.ts: the "Welcome to nginx!" page on :80' },
  {
    repositories: ['nicolaka/netshoot', 'busybox', 'alpine', 'ubuntu', 'debian', 'fedora', 'centos', 'cilium/alpine-curl'],
    kind: 'shell',
    runs: 'command/args on the host; idle without',
  },
  { repositories: ['curlimages/curl', 'curl/curl'], kind: 'curl', runs: 'command/args on the host (args starting with "-" go to curl); idle without' },
  { repositories: ['networkstatic/iperf3', 'mlabbe/iperf3', 'taoyou/iperf3-alpine', '*iperf3*'], kind: 'iperf3', runs: 'iperf3 (default -s; args replace it)' },
  { repositories: ['cilium/netperf', 'networkstatic/netperf', 'tgraf/netperf', '*netperf*'], kind: 'netperf', runs: 'netserver -D (the host\'s, else a stand-in serving iperf3 -s for the netperf stand-in); args run as the command' },
  { repositories: ['ciliary/echo-server'], kind: 'echo', runs: 'echo-server.ts: TCP+UDP echo (port arg, default 7)' },
  { repositories: ['coredns/coredns', 'coredns'], kind: 'coredns', runs: 'coredns.ts: cluster DNS on :53 UDP+TCP (services from the agent, the rest forwarded), metrics on :9153' },
];

const HERE = fileURLToPath(new URL('.', import.meta.url));
/** Stand-ins for tools the seeds run that hosts rarely have (netperf, netserver over iperf3): searched after PATH. */
export const STANDIN_BIN = join(HERE, 'bin');
const TSX_LOADER = fileURLToPath(new URL('../../node_modules/tsx/dist/esm/index.mjs', import.meta.url));

/** `quay.io/cilium/starwars:v2.1@sha256:…` → registry quay.io, repository cilium/starwars, tag v2.1. */
export function parseImage(ref: string): { registry: string; repository: string; tag: string; digest?: string } {
  let rest = ref.trim();
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) [rest, digest] = [rest.slice(0, at), rest.slice(at + 1)];
  let tag = 'latest';
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) [rest, tag] = [rest.slice(0, colon), rest.slice(colon + 1)];
  let registry = 'docker.io';
  const slash = rest.indexOf('/');
  const first = slash >= 0 ? rest.slice(0, slash) : '';
  if (first && (first.includes('.') || first.includes(':') || first === 'localhost')) [registry, rest] = [first, rest.slice(slash + 1)];
  if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = 'docker.io';
  if (registry === 'docker.io' && rest.startsWith('library/')) rest = rest.slice('library/'.length);
  return { registry, repository: rest.toLowerCase(), tag, ...(digest ? { digest } : {}) };
}

function kindOf(repository: string): Kind | undefined {
  for (const entry of BUILTIN_IMAGES) if (entry.repositories.includes(repository)) return entry.kind;
  const last = repository.slice(repository.lastIndexOf('/') + 1);
  for (const entry of BUILTIN_IMAGES) {
    for (const pattern of entry.repositories) if (pattern.startsWith('*') && last.includes(pattern.slice(1, -1))) return entry.kind;
  }
  return undefined;
}

/** A host executable: names are looked up on PATH, paths must exist (else their basename is looked up on PATH). */
function onHost(file: string): string | undefined {
  const executable = (p: string) => {
    try {
      accessSync(p, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (file.includes('/')) {
    if (executable(file)) return file;
    file = basename(file);
  }
  const dirs = (process.env.PATH || '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter);
  if (dirs.some((d) => d && executable(join(d, file)))) return file;
  return executable(join(STANDIN_BIN, file)) ? join(STANDIN_BIN, file) : undefined;
}

/** Kubernetes' $(VAR) expansion: defined variables are substituted, `$$` is a literal `$`, the rest stays as written. */
export function expandVars(s: string, env: Record<string, string>): string {
  return s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (m, name?: string) => (name === undefined ? '$' : (env[name] ?? m)));
}

type Plan = { builtin: BuiltinName; args: string[] } | { host: string[] } | { error: string };

function plan(kind: Kind | undefined, image: string, command?: string[], args?: string[]): Plan {
  const builtinIf = (names: string[], builtin: BuiltinName, argv: string[]): Plan =>
    names.includes(basename(argv[0])) ? { builtin, args: argv.slice(1) } : { host: argv };
  const cmd = command ? [...command, ...(args ?? [])] : undefined;
  switch (kind) {
    case 'whoami':
      return cmd ? builtinIf(['whoami'], 'whoami', cmd) : { builtin: 'whoami', args: args ?? [] };
    case 'deathstar':
      return cmd ? builtinIf(['deathstar', 'starwars', 'app'], 'deathstar', cmd) : { builtin: 'deathstar', args: args ?? [] };
    case 'json-mock':
      return cmd ? { host: cmd } : { builtin: 'json-mock', args: args ?? [] };
    case 'nginx': // docker-entrypoint.sh execs its arguments; `nginx -g 'daemon off;'` is the default
      return cmd ? builtinIf(['nginx'], 'nginx', cmd) : args ? builtinIf(['nginx'], 'nginx', args) : { builtin: 'nginx', args: [] };
    case 'shell': // CMD-only images: args are the command
      return cmd ? { host: cmd } : args ? { host: args } : { builtin: 'idle', args: [] };
    case 'curl': // the curl image's entrypoint runs curl when its first argument is an option or not a program
      if (cmd) return { host: cmd };
      if (!args) return { builtin: 'idle', args: [] };
      return { host: args[0].startsWith('-') || !onHost(args[0]) ? ['curl', ...args] : args };
    case 'iperf3': // ENTRYPOINT iperf3, CMD -s
      return { host: cmd ?? ['iperf3', ...(args ?? ['-s'])] };
    case 'netperf': // CMD netserver -D
      return { host: cmd ?? args ?? ['netserver', '-D'] };
    case 'echo':
      return cmd ? { host: cmd } : { builtin: 'echo-server', args: args ?? [] };
    case 'coredns': // ENTRYPOINT /coredns; `-conf /etc/coredns/Corefile` is read as the cluster's default
      return cmd ? builtinIf(['coredns'], 'coredns', cmd) : { builtin: 'coredns', args: args ?? [] };
    default:
      if (cmd) return { host: cmd };
      return { error: `image "${image}" has no built-in equivalent in ciliary; give the container a command` };
  }
}

/** What to run for a container: argv + env, or why it can't run. */
export function workloadFor(container: ContainerLike): Workload | { error: string } {
  const env: Record<string, string> = {};
  for (const e of container.env ?? []) env[e.name] = expandVars(e.value ?? '', env);
  const given = (a?: string[]) => (a && a.length ? a.map((s) => expandVars(String(s), env)) : undefined);
  const { repository } = parseImage(container.image);
  const kind = kindOf(repository);
  const p = plan(kind, container.image, given(container.command), given(container.args));
  if ('error' in p) return p;
  if ('builtin' in p) return builtin(p.builtin, p.args, env);

  const argv = p.host;
  const exe = onHost(argv[0]);
  if (!exe) return { error: `image "${container.image}": executable "${argv[0]}" not found on the host (PATH)` };
  const note = exe.startsWith(STANDIN_BIN) ? `${argv[0]} is not installed on this host; ciliary's stand-in runs (over iperf3)` : undefined;
  return { argv: [exe, ...argv.slice(1)], env, ...(note ? { note } : {}) };
}

/** node + tsx + src/workloads/<name>.ts + args. */
export function builtin(name: BuiltinName, args: string[], env: Record<string, string> = {}): Workload {
  return { argv: [process.execPath, '--import', TSX_LOADER, join(HERE, `${name}.ts`), ...args], env, builtin: name };
}
