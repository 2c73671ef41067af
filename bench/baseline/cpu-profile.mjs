// Loaded into the agent with --import when BENCH_CPU_PROF=DIR is set: each pair of SIGUSR2s brackets
// one V8 CPU profile (100 µs sampling), written to DIR/agent-<n>.cpuprofile on the second signal.
import { renameSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import process from 'node:process';

const dir = process.env.BENCH_CPU_PROF;
const session = new Session();
session.connect();
let profiling = false;
let written = 0;
process.on('SIGUSR2', () => {
  if (!profiling) {
    session.post('Profiler.enable', () => session.post('Profiler.setSamplingInterval', { interval: 100 }, () => session.post('Profiler.start')));
  } else {
    session.post('Profiler.stop', (err, res) => {
      // Renamed into place so the bench never reads half a file.
      const file = `${dir}/agent-${written++}.cpuprofile`;
      writeFileSync(`${file}.part`, JSON.stringify(err ? { error: String(err), nodes: [] } : res.profile));
      renameSync(`${file}.part`, file);
    });
  }
  profiling = !profiling;
});
