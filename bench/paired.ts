// A ratio of two paths measured on a shared machine: the load of other processes drifts over the
// seconds a bench runs, so measuring one path's runs and then the other's moves the ratio with the
// drift. Here both paths run in pairs, alternating which goes first, after a discarded warm-up run
// of each (the agent's datapath code is optimised by V8 on its first packets, and ARP/CT/NAT
// entries are made); the ratio is the median of the pairs' ratios. Measured under a load of 14 on
// two cores, the kernel path swung most (1.4-3.4 Gbit/s between runs a few seconds apart: it scales
// with the CPU others leave free), so one pair can still be far off: five pairs, their median.
import { REPEAT } from './lib.ts';

export interface PairedResult {
  ours: number;
  baseline: number;
  ratio: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const PAIRS = Math.max(REPEAT, 5);

/** Medians of both paths' figures and of their per-pair ratios (ours / baseline), over PAIRS pairs;
 *  the pairs go to stderr under `label`. */
export async function paired(ours: () => Promise<number>, baseline: () => Promise<number>, label = 'ours/kernel Gbit/s'): Promise<PairedResult> {
  await ours();
  await baseline();
  const o: number[] = [];
  const b: number[] = [];
  const r: number[] = [];
  for (let i = 0; i < PAIRS; i++) {
    let x: number;
    let y: number;
    if (i % 2 === 0) {
      x = await ours();
      y = await baseline();
    } else {
      y = await baseline();
      x = await ours();
    }
    o.push(x);
    b.push(y);
    r.push(x / y);
  }
  console.error(`paired ${label}: ${o.map((x, i) => `${x.toFixed(2)}/${b[i].toFixed(2)}`).join(' ')}`);
  return { ours: median(o), baseline: median(b), ratio: median(r) };
}
