export * from '../maps/cilium/policy.ts';
