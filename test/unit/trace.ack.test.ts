// The trace start acknowledgement: GET /v1/trace writes its "started" record only after the agent
// has installed the tracer, and `ciliary trace` announces it on stderr before any packet.
import { describe, it, expect, afterEach } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import { tracePlugin } from '../../src/api/trace.ts';
import { traceCommand } from '../../src/cli/trace.ts';
import { parseArgs } from '../../src/cli/args.ts';
import type { AgentClient } from '../../src/cli/client.ts';
import type { AgentFacade } from '../../src/control/types.ts';
import type { TraceSink } from '../../src/observe/trace/types.ts';

const PACKET = { header: 'Dec 01 12:00:00.000 from endpoint 1 10.0.0.1:1 -> 10.0.0.2:80 TCP SYN length 60', steps: ['cil_from_container'], verdict: '→ redirect fd=3' };

describe('trace start acknowledgement', () => {
  let app: FastifyInstance | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('the first line is the started record, written after startTrace installed the tracer; packets follow', async () => {
    const order: string[] = [];
    let sink: TraceSink | undefined;
    const agent = {
      startTrace: (_req: unknown, s: TraceSink) => {
        order.push('installed');
        sink = s;
        setImmediate(() => {
          s.packet(PACKET);
          s.end('count');
        });
        return () => undefined;
      },
    } as unknown as AgentFacade;
    app = Fastify();
    await app.register(tracePlugin, { agent });
    const res = await app.inject({ method: 'GET', url: '/v1/trace?ip=10.0.0.2&count=1&timeout=2.5' });
    expect(order).toEqual(['installed']);
    expect(sink).toBeDefined();
    expect(res.statusCode).toBe(200);
    const lines = res.body.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toEqual([{ started: { count: 1, timeoutSeconds: 2.5 } }, PACKET]);
  });

  it('a refused trace (409) writes no started record', async () => {
    const { ApiError } = await import('../../src/control/types.ts');
    const agent = { startTrace: () => { throw new ApiError(409, 'a trace is already running on this node'); } } as unknown as AgentFacade;
    app = Fastify();
    await app.register(tracePlugin, { agent });
    const res = await app.inject({ method: 'GET', url: '/v1/trace' });
    expect(res.statusCode).toBe(409);
    expect(res.body).not.toContain('started');
  });

  it('ciliary trace prints "Tracing started" on stderr first, and counts only packets', async () => {
    const io: string[] = [];
    const client = {
      stream: async (_path: string, onObject: (o: unknown) => void) => {
        onObject({ started: { count: 1, timeoutSeconds: 0 } });
        onObject(PACKET);
      },
    } as unknown as AgentClient;
    const code = await traceCommand(parseArgs(['--count', '1']), client, { out: (s) => io.push(`out:${s}`), err: (s) => io.push(`err:${s}`) });
    expect(code).toBe(0);
    expect(io[0]).toBe('err:Tracing started: up to 1 packet; press Ctrl-C to stop\n');
    expect(io.slice(1).join('')).toBe(`out:${PACKET.header}\n    cil_from_container\n    ${PACKET.verdict}\n\nout:1 packet traced\n`);
  });
});
