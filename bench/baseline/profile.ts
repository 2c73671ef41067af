// BENCH_CPU_PROF=DIR: V8 CPU profiles of the agent during single measurements (cpu-profile.mjs
// toggled by SIGUSR2), summarised on stderr as the functions with the most self time.
import { existsSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestAgent } from '../../test/helpers/agent.ts';

export const PROFILE_DIR = process.env.BENCH_CPU_PROF;
const TOP = 15;
let taken = 0;

/** Starts `agent` with the profiling hook loaded when PROFILE_DIR is set. */
export async function startAgent(agent: TestAgent): Promise<void> {
  const saved = process.env.NODE_OPTIONS;
  if (PROFILE_DIR) process.env.NODE_OPTIONS = `${saved ?? ''} --import=${join(import.meta.dirname, 'cpu-profile.mjs')}`;
  try {
    await agent.start();
  } finally {
    if (saved === undefined) delete process.env.NODE_OPTIONS;
    else process.env.NODE_OPTIONS = saved;
  }
}

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number }; hitCount?: number }

const maps = new Map<string, SourceMap | undefined>();
/** The source map next to a bundled script (the agent runs from .build/agent.mjs), if it has one. */
function sourceMap(url: string): SourceMap | undefined {
  if (!maps.has(url)) {
    const map = `${fileURLToPath(url)}.map`;
    maps.set(url, existsSync(map) ? new SourceMap(JSON.parse(readFileSync(map, 'utf8'))) : undefined);
  }
  return maps.get(url);
}

/** The .ts file a frame's code came from: its own URL, or through the bundle's source map. */
function sourceOf(f: ProfileNode['callFrame']): string {
  const map = f.url.endsWith('.mjs') && f.url.startsWith('file:') ? sourceMap(f.url) : undefined;
  const entry = map?.findEntry(f.lineNumber, f.columnNumber);
  const source = entry && 'originalSource' in entry ? entry.originalSource : undefined;
  const url = source ? new URL(source, f.url).href : f.url;
  return url.replace(/^file:\/\/.*?\/(src|node_modules)\//, '$1/');
}

/** Self-time share per function, largest first. */
function summarise(file: string): string[] {
  const nodes: ProfileNode[] = JSON.parse(readFileSync(file, 'utf8')).nodes;
  const self = new Map<string, number>();
  let total = 0;
  for (const n of nodes) {
    const f = n.callFrame;
    // Per function and file: a function's lines differ between its samples.
    const where = sourceOf(f);
    const key = `${f.functionName || '(anonymous)'} ${where}`.trim();
    self.set(key, (self.get(key) ?? 0) + (n.hitCount ?? 0));
    total += n.hitCount ?? 0;
  }
  return [...self].sort((a, b) => b[1] - a[1]).slice(0, TOP).map(([k, v]) => `${((100 * v) / total).toFixed(1).padStart(5)} %  ${k}`);
}

/** Runs `measurement` inside one agent profile and prints the profile's top functions to stderr. */
export async function profiled<T>(agent: TestAgent, label: string, measurement: () => Promise<T>): Promise<T> {
  const pid = agent.proc!.pid!;
  const file = join(PROFILE_DIR!, `agent-${taken++}.cpuprofile`);
  process.kill(pid, 'SIGUSR2');
  const result = await measurement();
  process.kill(pid, 'SIGUSR2');
  for (let i = 0; i < 100 && !existsSync(file); i++) await new Promise((r) => setTimeout(r, 50));
  if (!existsSync(file)) throw new Error(`latency bench: the agent wrote no CPU profile ${file}`);
  // Native time shows as "constants" with no file; under flush it is the addon's TUN write call.
  console.error(`\nagent CPU profile during ${label} (${file}), self time:\n${summarise(file).join('\n')}`);
  return result;
}
