// The real agent core for unit tests: in-memory store and maps, no devices, namespaces or processes.
import { pino } from 'pino';
import { Agent } from '../../src/agent/agent.ts';
import { memoryPlatform } from '../../src/agent/platform.ts';
import { defaultConfig, type AgentConfig } from '../../src/control/config.ts';
import type { KVStore } from '../../src/control/kvstore.ts';
import type { MonitorEvent } from '../../src/control/types.ts';

/** kv: a store to share with the test (another writer), in memory by default. */
export async function startAgentCore(node = 'k8s-ctr', cfg: Partial<AgentConfig> = {}, kv?: KVStore): Promise<Agent> {
  const agent = new Agent({ ...defaultConfig(node), 'node-ip': '192.168.10.100', ...cfg }, pino({ level: 'silent' }), memoryPlatform(kv));
  await agent.start();
  return agent;
}

/** The agent's monitor readers (the API's subscriptions), so a test can wait for them and feed them events. */
export interface MonitorTap {
  readonly readers: Set<(e: MonitorEvent) => void>;
  /** A monitor event as the datapath's ring hands it to subscribers (its text is the ring's own test). */
  emit(e: Partial<MonitorEvent>): void;
}

export function tapMonitor(agent: Agent): MonitorTap {
  const readers = new Set<(e: MonitorEvent) => void>();
  const subscribe = agent.subscribeMonitor.bind(agent);
  agent.subscribeMonitor = (cb) => {
    readers.add(cb);
    const off = subscribe(cb);
    return () => { readers.delete(cb); off(); };
  };
  return { readers, emit: (e) => { for (const cb of readers) cb({ type: 'trace', time: new Date().toISOString(), summary: 'x', ...e }); } };
}
