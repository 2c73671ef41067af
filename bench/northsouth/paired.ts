// A ratio of two paths measured on a shared machine: the load of other processes drifts over the
// seconds a bench runs, so measuring one path's runs and then the other's moves the ratio with the
// drift. Here both paths run in pairs, alternating which goes first, after a discarded warm-up run
// of each (the agent's datapath code is optimised by V8 on its first packets, and ARP/CT/NAT
// entries are made); the ratio is the median of the pairs' ratios.
import { REPEAT } from '../lib.ts';

export interface PairedResult {
  ours: number;
  kernel: number;
  ratio: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Medians of both paths' Gbit/s and of their per-pair ratios, over max(REPEAT, 3) pairs. */
export async function paired(ours: () => Promise<number>, kernel: () => Promise<number>): Promise<PairedResult> {
  await ours();
  await kernel();
  const o: number[] = [];
  const k: number[] = [];
  const r: number[] = [];
  for (let i = 0; i < Math.max(REPEAT, 3); i++) {
    let a: number;
    let b: number;
    if (i % 2 === 0) {
      a = await ours();
      b = await kernel();
    } else {
      b = await kernel();
      a = await ours();
    }
    o.push(a);
    k.push(b);
    r.push(a / b);
  }
  return { ours: median(o), kernel: median(k), ratio: median(r) };
}
