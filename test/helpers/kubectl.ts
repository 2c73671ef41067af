// The real kubectl (/usr/bin/kubectl) run inside an agent's node namespace with the kubeconfig it wrote,
// its discovery cache in a private directory; and the column helpers the kubectl tests read tables with.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import type { TestAgent } from './agent.ts';

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
