export * from '../maps/cilium/ct.ts';
