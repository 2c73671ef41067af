// The image → program mapping lives in src/workloads/images.ts; this is the seam tests replace.
import { workloadFor as imagesWorkloadFor, type ContainerLike } from '../../workloads/images.ts';

export type ContainerInput = ContainerLike;
export type Workload = { argv: string[]; env: Record<string, string> } | { error: string };
export type WorkloadFor = (c: ContainerInput) => Workload;

export function loadWorkloadFor(): Promise<WorkloadFor> {
  return Promise.resolve(imagesWorkloadFor);
}
