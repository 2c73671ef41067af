export * from '../maps/cilium/proxy.ts';
