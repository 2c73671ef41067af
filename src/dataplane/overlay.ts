// The tunnel device of routing-mode tunnel: a UDP socket on the node IP and tunnel port in the node's
// namespace, read into bpf_overlay's cil_from_overlay and written by the datapath's tunnel queue.
import type { Logger } from 'pino';
import { native } from '../native/index.ts';
import type { Datapath } from './datapath.ts';
import { cil_from_overlay, OVERLAY_DEVICE } from './programs/bpf_overlay.ts';
import { TUNNEL_OVERHEAD } from './lib/encap.ts';
import { VXLAN_INNER_OFFSET } from '../wire/vxlan.ts';
import { parseIPv4 } from '../wire/ip-text.ts';

/** Socket buffers sized for bursts of 64 KiB super-packets cut into datagrams. */
const SOCKET_BUFFER = 8 * 1024 * 1024;

export interface OverlayConfig {
  'routing-mode': string;
  'tunnel-protocol': string;
  'tunnel-port': number;
  'node-ip': string;
  mtu: number;
}

export interface Overlay {
  port: number;
  close(): void;
}

/** MTU of pod devices: in tunnel mode the encapsulation's 50 bytes come out of it. */
export function podMtu(cfg: OverlayConfig): number {
  return cfg['routing-mode'] === 'tunnel' ? cfg.mtu - TUNNEL_OVERHEAD : cfg.mtu;
}

/** Opens and attaches the overlay socket in tunnel mode; undefined in native routing. */
export function startOverlay(dp: Datapath, cfg: OverlayConfig, log: Logger): Overlay | undefined {
  if (cfg['routing-mode'] !== 'tunnel') return undefined;
  if (cfg['tunnel-protocol'] !== 'vxlan') throw new Error(`tunnel-protocol ${cfg['tunnel-protocol']} is not supported (only vxlan)`);
  const nodeIP = cfg['node-ip'] ? parseIPv4(cfg['node-ip']) : 0;
  const { fd, port } = native.udpOpen(null, nodeIP, cfg['tunnel-port'], SOCKET_BUFFER);
  dp.tunnel.fd = fd;
  dp.tunnel.port = port;
  dp.tunnel.nodeIP = nodeIP;
  dp.tunnel.gso = native.udpCapabilities().gso;
  dp.hooks[OVERLAY_DEVICE] = cil_from_overlay;
  dp.io.attachUdp(OVERLAY_DEVICE, fd, VXLAN_INNER_OFFSET, true);
  log.info({ nodeIP: cfg['node-ip'] || '0.0.0.0', port, protocol: 'vxlan', gso: dp.tunnel.gso }, 'overlay: tunnel socket open');
  return {
    port,
    close() {
      dp.detach(OVERLAY_DEVICE);
      dp.tunnel.fd = -1;
      native.closeFd(fd);
    },
  };
}
