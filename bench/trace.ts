// What `ciliary trace` costs: pod → pod iperf3 TCP through a real agent with no tracer installed,
// with a trace session active whose filter matches nothing (every packet pays match()), and,
// for information, with a trace that matches the flow (every packet recorded and formatted).
import { request, type ClientRequest } from 'node:http';
import { TestAgent } from '../test/helpers/agent.ts';
import { sleep } from '../test/helpers/sys.ts';
import { tcpGbps, round } from './lib.ts';

/** Opens GET /v1/trace?query and keeps reading it; returns the request (destroy it to stop) and a line counter. */
async function openTrace(agent: TestAgent, query: string): Promise<{ req: ClientRequest; lines: () => number }> {
  let lines = 0;
  let status = 0;
  const req = request({ socketPath: agent.socket, path: `/v1/trace?${query}` }, (res) => {
    status = res.statusCode ?? 0;
    res.on('data', (d: Buffer) => {
      for (const b of d) if (b === 10) lines++;
    });
  });
  req.on('error', () => undefined);
  req.end();
  for (let i = 0; i < 50 && status === 0; i++) await sleep(20);
  if (status !== 200) throw new Error(`trace request answered ${status}`);
  return { req, lines: () => lines };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

export async function benchTrace() {
  const agent = new TestAgent();
  try {
    await agent.start();
    await agent.createPod('trace-client', { app: 'trace-client' });
    const b = await agent.createPod('trace-server', { app: 'trace-server' });
    const client = agent.podNetns('trace-client');
    const server = agent.podNetns('trace-server');
    // ABBA ABBA: drift in the machine's speed (other load on two shared cores) hits both alike.
    const none: number[] = [];
    const inactive: number[] = [];
    for (const withTrace of [false, true, true, false, false, true, true, false]) {
      if (!withTrace) {
        none.push(await tcpGbps(client, server, b.podIP));
        continue;
      }
      const t = await openTrace(agent, 'ip=192.0.2.1&count=1');
      try {
        inactive.push(await tcpGbps(client, server, b.podIP));
      } finally {
        t.req.destroy();
        await sleep(100);
      }
    }
    const on = await openTrace(agent, 'pod=trace-client&count=100000');
    let onGbps: number;
    let traced: number;
    try {
      onGbps = await tcpGbps(client, server, b.podIP);
      traced = on.lines() - 1; // the first line is the started record
    } finally {
      on.req.destroy();
    }
    const noneGbps = mean(none);
    const inactiveGbps = mean(inactive);
    return {
      trace_none_tcp_gbps: round(noneGbps),
      trace_off_tcp_gbps: round(inactiveGbps),
      ratio_trace_off_vs_no_trace_tcp: round(inactiveGbps / noneGbps),
      trace_on_tcp_gbps: round(onGbps),
      trace_on_packets_traced: traced,
    };
  } finally {
    await agent.destroy();
  }
}
