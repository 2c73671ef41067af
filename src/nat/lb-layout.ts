export * from '../maps/cilium/lb.ts';
