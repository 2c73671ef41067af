// The tunnel device of routing-mode tunnel: a UDP socket on the node IP and tunnel port in the node's
// namespace, read into bpf_overlay's cil_from_overlay and written by the datapath's tunnel queue;
// TCP super-packets leave through cilium_vxlan, a TAP the kernel's UDP-tunnel GSO segments from.
import { writeFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { native } from '../native/index.ts';
import type { Datapath } from './datapath.ts';
import { cil_from_overlay, OVERLAY_DEVICE } from './programs/bpf_overlay.ts';
import { TUNNEL_OVERHEAD } from './lib/encap.ts';
import { VXLAN_INNER_OFFSET } from '../wire/vxlan.ts';
import { parseIPv4 } from '../wire/ip-text.ts';

/** Socket buffers sized for bursts of 64 KiB super-packets cut into datagrams. */
const SOCKET_BUFFER = 8 * 1024 * 1024;
/** Cilium's name for its tunnel device. */
export const TUNNEL_IFNAME = 'cilium_vxlan';
/** The MAC native code gives it: the frames written there are addressed to it. */
const tapMac = (m = native.constants().TUNNEL_TAP_MAC) => [40, 32, 24, 16, 8, 0].map((shift) => Math.floor(m / 2 ** shift) % 256);

export interface OverlayConfig {
  'routing-mode': string;
  'tunnel-protocol': string;
  'tunnel-port': number;
  'node-ip': string;
  mtu: number;
  'enable-tunnel-gso': boolean;
}

export interface Overlay {
  port: number;
  /** Super-packets leave whole through cilium_vxlan for the kernel to segment. */
  tunnelGso: boolean;
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
  // A sender's super-packet may arrive whole (UDP-tunnel GSO over a bridge): longer than a pod packet.
  dp.io.attachUdp(OVERLAY_DEVICE, fd, VXLAN_INNER_OFFSET, true, podMtu(cfg));
  const tap = cfg['enable-tunnel-gso'] && nodeIP !== 0 ? openTunnelDevice(log) : -1;
  if (tap >= 0) dp.tunnel.useTunnelGso(tap, tapMac());
  log.info({ nodeIP: cfg['node-ip'] || '0.0.0.0', port, protocol: 'vxlan', gso: dp.tunnel.gso, tunnelGso: tap >= 0 }, 'overlay: tunnel socket open');
  return {
    port,
    tunnelGso: tap >= 0,
    close() {
      dp.detach(OVERLAY_DEVICE);
      dp.tunnel.fd = -1;
      dp.tunnel.gsoFd = -1;
      native.closeFd(fd);
      // Not persistent: the device goes with its last fd.
      if (tap >= 0) native.closeFd(tap);
    },
  };
}

/**
 * cilium_vxlan: a TAP whose frames enter the node's stack and are forwarded to the tunnel endpoint
 * like the socket's datagrams; its source is the node's own address, hence accept_local. -1 when the
 * kernel lacks UDP-tunnel GSO in TUN devices (before 6.17): super-packets are then cut by the agent.
 */
function openTunnelDevice(log: Logger): number {
  let fd: number;
  try {
    fd = native.tunOpen(TUNNEL_IFNAME, null, true, true, false, true, true).fd;
  } catch (e) {
    log.warn({ err: (e as Error).message }, `overlay: no UDP-tunnel GSO device ${TUNNEL_IFNAME}; super-packets are segmented by the agent`);
    return -1;
  }
  try {
    for (const [key, value] of [['accept_local', '1'], ['rp_filter', '0']]) writeFileSync(`/proc/sys/net/ipv4/conf/${TUNNEL_IFNAME}/${key}`, value);
    writeFileSync(`/proc/sys/net/ipv6/conf/${TUNNEL_IFNAME}/disable_ipv6`, '1');
    native.setLinkUp(TUNNEL_IFNAME, null, true);
  } catch (e) {
    // Without accept_local the stack drops its frames as martians: the device would be a black hole.
    native.closeFd(fd);
    log.warn({ err: (e as Error).message }, `overlay: ${TUNNEL_IFNAME} cannot be set up; super-packets are segmented by the agent`);
    return -1;
  }
  return fd;
}
