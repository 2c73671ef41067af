// Running the few system tools the control plane needs (ip, sysctl), with errors that say what failed.
import { execFile } from 'node:child_process';

export function run(cmd: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = execFile(cmd, args, { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${(stderr || err.message).trim()}`));
      else resolve(stdout);
    });
    if (input !== undefined) c.stdin?.end(input);
  });
}

/** Runs several `ip` commands in one process (`ip -batch`), optionally inside a namespace. */
export function ipBatch(lines: string[], netns?: string): Promise<string> {
  return run('ip', [...(netns ? ['-n', netns] : []), '-batch', '-'], lines.join('\n') + '\n');
}
