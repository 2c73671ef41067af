// The real agent core for unit tests: in-memory store and maps, no devices, namespaces or processes.
import { pino } from 'pino';
import { Agent } from '../../src/agent/agent.ts';
import { memoryPlatform } from '../../src/agent/platform.ts';
import { defaultConfig, type AgentConfig } from '../../src/control/config.ts';
import type { KVStore } from '../../src/control/kvstore.ts';

/** kv: a store to share with the test (another writer), in memory by default. */
export async function startAgentCore(node = 'k8s-ctr', cfg: Partial<AgentConfig> = {}, kv?: KVStore): Promise<Agent> {
  const agent = new Agent({ ...defaultConfig(node), 'node-ip': '192.168.10.100', ...cfg }, pino({ level: 'silent' }), memoryPlatform(kv));
  await agent.start();
  return agent;
}
