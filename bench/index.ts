// npm run bench [-- SUITE…]: runs the benchmark suites and prints one JSON object with the
// measurements and the ratios against baselines measured in the same run.
import { benchNative } from './native.ts';
import { benchPipeline } from './pipeline.ts';
import { benchPolicy } from './policy.ts';
import { benchServices } from './services.ts';
import { benchTrace } from './trace.ts';
import { benchL7 } from './l7.ts';
import { benchLatency } from './latency.ts';
import { benchBandwidth } from './bandwidth.ts';
import { benchNorthSouth } from './northsouth/index.ts';
import { benchMultinode } from './multinode.ts';
import { cleanup, round } from './lib.ts';

type Result = Record<string, number>;
const SUITES: Record<string, (acc: Result) => Promise<Result>> = {
  native: () => benchNative(),
  pipeline: async (acc) => {
    const r = await benchPipeline();
    const out: Result = { ...r };
    if (acc.native_tcp_gbps) out.ratio_pipeline_vs_native_tcp = round(r.pipeline_tcp_gbps / acc.native_tcp_gbps);
    if (acc.native_udp64_pps) out.ratio_pipeline_vs_native_udp_pps = round(r.pipeline_udp64_pps / acc.native_udp64_pps);
    out.agent_plus_maps_mib = round(r.agent_rss_mib + r.maps_resident_mib, 1);
    return out;
  },
  services: () => benchServices(),
  policy: () => benchPolicy(),
  trace: () => benchTrace(),
  l7: () => benchL7(),
  latency: () => benchLatency(),
  bandwidth: () => benchBandwidth(),
  northsouth: () => benchNorthSouth(),
  multinode: () => benchMultinode(),
};

async function main(): Promise<void> {
  const asked = process.argv.slice(2);
  for (const s of asked) if (!SUITES[s]) throw new Error(`unknown suite "${s}"; suites: ${Object.keys(SUITES).join(', ')}`);
  // The pipeline ratios need the native loop measured in the same run.
  const names = asked.length ? asked : Object.keys(SUITES);
  if (names.includes('pipeline') && !names.includes('native')) names.unshift('native');
  const acc: Result = {};
  for (const name of names) Object.assign(acc, await SUITES[name](acc));
  console.log(JSON.stringify(acc, null, 2));
}

main()
  .catch((e) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(cleanup);
