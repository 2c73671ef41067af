// Monotonic seconds since boot, like bpf_mono_now(): CT lifetimes stay valid across agent restarts.
import { readFileSync } from 'node:fs';

const bootOffset = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) - performance.now() / 1000;

export function monoSeconds(): number {
  return Math.floor(bootOffset + performance.now() / 1000);
}
