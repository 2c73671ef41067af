// npx tsx bench/l7-hold.ts [l4|l7]: the l7 bench's agent, pods and policy, held until SIGUSR1, to look at
// with perf, tcpdump or the load generator by hand. Prints the names and pids it made.
import { TestAgent } from '../test/helpers/agent.ts';
import { sh, waitListening } from '../test/helpers/sys.ts';
import { rule, SERVER } from './l7.ts';
import { startAgent } from './baseline/profile.ts';

const agent = new TestAgent();
try {
  await startAgent(agent);
  await agent.createPod('bench-client', { app: 'bench-client' });
  const server = await agent.createPod('bench-server', { app: 'bench-server' }, ['node', '-e', SERVER]);
  await waitListening(agent.podNetns('bench-server'), 8080);
  await agent.api('PUT', '/v1/policy', [rule(process.argv[2] !== 'l4')]);
  console.log(JSON.stringify({ agentPid: agent.proc!.pid, node: agent.nodeNetns, client: agent.podNetns('bench-client'), server: agent.podNetns('bench-server'), serverIP: server.podIP,
    serverPid: sh('ip', ['netns', 'pids', agent.podNetns('bench-server')]).trim() }));
  await new Promise((r) => process.once("SIGUSR1", r));
} finally {
  await agent.destroy();
}
