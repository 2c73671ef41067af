// npm run bench -- northsouth: traffic in and out of the cluster on one lab (scripts/netns/cluster.sh
// up 2, with testpc, the router and the internet host), each case against a kernel path built in
// the same run on the same topology. Numbers on a shared machine are indicative.
import { Lab } from '../../test/helpers/lab.ts';
import { benchMasquerade } from './masquerade.ts';

type Result = Record<string, number>;
/** The cases, run in order on the same lab. */
const CASES: Array<(lab: Lab) => Promise<Result>> = [benchMasquerade];

export async function benchNorthSouth(): Promise<Result> {
  const lab = new Lab('bs');
  try {
    const up = await lab.sh(['up', '2']);
    if (up.code !== 0) throw new Error(`cluster.sh up 2 failed: ${up.stderr}`);
    const out: Result = {};
    for (const c of CASES) Object.assign(out, await c(lab));
    return out;
  } finally {
    await lab.down();
  }
}
