// ciliary-agent: one per node. Loads the configuration, starts the datapath and serves the API.
import { loadConfig, ConfigError, configUsage } from '../control/config.ts';
import { loggerFromConfig } from '../control/log.ts';
import { startApi } from '../api/index.ts';
import { clusterToken } from '../api/cluster-listener.ts';
import { Agent } from './agent.ts';

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(configUsage());
    return;
  }
  let cfg;
  try {
    cfg = loadConfig(argv, process.env);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`ciliary-agent: ${e.message}`);
      process.exit(2);
    }
    throw e;
  }
  const log = loggerFromConfig(cfg);
  // Pod processes inherit it: the CoreDNS pods read services from this agent's API.
  process.env.CILIARY_AGENT_SOCKET = cfg['api-socket'];
  const agent = new Agent(cfg, log);
  await agent.start();
  // ":PORT" serves on this node's IP.
  const address = cfg['cluster-api-address'].startsWith(':') ? `${cfg['node-ip']}${cfg['cluster-api-address']}` : cfg['cluster-api-address'];
  const cluster = address ? { address, token: clusterToken(cfg['cluster-token-file']) } : undefined;
  const api = await startApi(agent, { socketPath: cfg['api-socket'], port: cfg['api-port'] || undefined, cluster, logger: log });
  log.info({ socket: cfg['api-socket'] }, 'API listening');
  let stopping = false;
  const shutdown = async (sig: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ sig }, 'shutting down; pods and maps stay');
    await api.close().catch(() => undefined);
    await agent.stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((e) => {
  console.error(`ciliary-agent: ${(e as Error).stack ?? e}`);
  process.exit(1);
});
