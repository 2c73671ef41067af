// The real kubectl (/usr/bin/kubectl) run inside an agent's node namespace with the kubeconfig it wrote,
// its discovery cache in a private directory; such an agent's start and removal; and the column helpers
// the kubectl tests read tables with.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { TestAgent } from './agent.ts';
import { poll } from './sys.ts';

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export const lines = (s: string) => s.trimEnd().split('\n');
export const cols = (line: string) => line.trim().split(/\s{2,}/);

export class Kubectl {
  constructor(private readonly agent: TestAgent, private readonly cacheDir: string) {}

  get kubeconfig(): string {
    return join(this.agent.stateDir, 'kube', 'admin.conf');
  }

  /** The argv of kubectl with these arguments, inside the node namespace. */
  argv(args: string[]): string[] {
    return ['nsenter', `--net=/var/run/netns/${this.agent.nodeNetns}`, '/usr/bin/kubectl', '--kubeconfig', this.kubeconfig, '--cache-dir', this.cacheDir, ...args];
  }

  /** A long-running kubectl (get -w, logs -f); the caller kills it. */
  spawn(args: string[]): ChildProcessWithoutNullStreams {
    const [cmd, ...rest] = this.argv(args);
    return spawn(cmd, rest);
  }

  run(args: string[], input?: string): Promise<KubectlResult> {
    return new Promise((resolve) => {
      const c = this.spawn(args);
      let stdout = '';
      let stderr = '';
      c.stdout.on('data', (d) => (stdout += d));
      c.stderr.on('data', (d) => (stderr += d));
      const t = setTimeout(() => c.kill('SIGKILL'), 60_000);
      c.on('exit', (code, sig) => {
        clearTimeout(t);
        resolve({ code: code ?? (sig ? 128 : 1), stdout, stderr });
      });
      c.stdin.end(input ?? '');
    });
  }
}

/** Polls an asynchronous condition every 200 ms for up to 30 s (pods starting, a watch printing). */
export const until = (what: string, fn: () => Promise<boolean>) => poll(what, fn, 30_000, 200);

/** A test agent serving the kube API on 127.0.0.1:6443, and kubectl against it with its cache under `tmp`. */
export async function startKubeAgent(tmp: string): Promise<{ agent: TestAgent; k: Kubectl }> {
  const agent = new TestAgent(['--kube-apiserver-listen-address', '127.0.0.1:6443']);
  await agent.start();
  return { agent, k: new Kubectl(agent, join(tmp, 'cache')) };
}

/** Kills the pods' process groups (kubectl-made pods outlive the agent otherwise), then removes the agent and `tmp`. */
export async function stopKubeAgent(agent: TestAgent | undefined, tmp: string): Promise<void> {
  const pods = (await agent?.api('GET', '/v1/resources/pods').catch(() => undefined))?.body as Array<{ status: { pid?: number } }> | undefined;
  for (const p of pods ?? []) if (p.status.pid) try { process.kill(-p.status.pid, 'SIGKILL'); } catch { /* gone */ }
  await agent?.destroy();
  rmSync(tmp, { recursive: true, force: true });
}
