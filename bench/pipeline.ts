// Pod → pod through the whole agent (API-created pods, tail-called programs, pinned maps), and
// the agent's memory: RSS of the process and the resident part of its map files.
import { readFileSync } from 'node:fs';
import { TestAgent } from '../test/helpers/agent.ts';
import { tcpGbps, udpPps, round } from './lib.ts';

/** Resident KiB of the agent's mappings of files under its maps directory (from smaps). */
function mapsResidentKiB(pid: number, mapsDir: string): number {
  let kib = 0;
  let inMap = false;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) inMap = line.includes(mapsDir);
    else if (inMap && line.startsWith('Rss:')) kib += Number(line.split(/\s+/)[1]);
  }
  return kib;
}

export function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

export async function benchPipeline() {
  const agent = new TestAgent();
  try {
    await agent.start();
    const a = await agent.createPod('bench-client', { app: 'bench-client' });
    const b = await agent.createPod('bench-server', { app: 'bench-server' });
    const client = agent.podNetns('bench-client');
    const server = agent.podNetns('bench-server');
    const tcp = await tcpGbps(client, server, b.podIP);
    const pps = await udpPps(client, server, b.podIP);
    void a;
    const pid = agent.proc!.pid!;
    const mapsKiB = mapsResidentKiB(pid, `${agent.stateDir}/maps`);
    return {
      pipeline_tcp_gbps: round(tcp),
      pipeline_udp64_pps: Math.round(pps),
      agent_rss_mib: round((rssKiB(pid) - mapsKiB) / 1024, 1),
      maps_resident_mib: round(mapsKiB / 1024, 1),
    };
  } finally {
    await agent.destroy();
  }
}
