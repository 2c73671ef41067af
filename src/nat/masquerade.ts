// North-south on one node: finds the native device, configures BPF masquerade in the datapath
// (address, port range, exclusion CIDR, ip-masq-agent), installs the steering rules that bring
// replies and NodePort traffic to bpf_host, and expires translations with their conntrack.
import type { Logger } from 'pino';
import type { Datapath } from '../dataplane/datapath.ts';
import { parsePortRange, type AgentConfig } from '../control/config.ts';
import { DEFAULT_NODEPORT_RANGE, deviceAddress, deviceExists, deviceOf, installSteering, NO_FRONTENDS, type SteeredFrontends, type SteeringPlan } from '../control/north-south-routing.ts';
import { monoSeconds } from '../conntrack/clock.ts';
import { parseCidr, parseIPv4 } from '../wire/ip-text.ts';
import { IpMasqAgent } from './ip-masq-agent.ts';
import { installIptablesMasquerade, removeIptablesMasquerade } from './iptables-masquerade.ts';
import type { DatapathFeatures } from '../control/types.ts';

/** NAT slots visited per GC tick (bounded, as the CT sweep). */
const NAT_GC_BUDGET = 16384;
const NAT_GC_INTERVAL_MS = 1000;

export class Masquerade {
  private gcTimer?: NodeJS.Timeout;
  private ipMasqAgent?: IpMasqAgent;
  /** The plan in force; frontends change it (steerFrontends), one install after the other. */
  private plan?: SteeringPlan;
  private installs: Promise<unknown> = Promise.resolve();
  /** The kernel masquerades (enable-bpf-masquerade=false): its rule goes at close. */
  private iptables = false;

  private constructor(
    private readonly dp: Datapath,
    /** The native device, undefined when this node has none (no masquerade, no steering). */
    readonly device: string | undefined,
    /** The CIDR never masqueraded to; '' when masquerade is off. */
    private readonly excluded: string,
  ) {}

  /**
   * Sets the node up: with a native device (`devices`, else the one holding node-ip) the steering
   * rules go in and, with enable-ipv4-masquerade + enable-bpf-masquerade, BPF masquerade runs.
   */
  static async start(dp: Datapath, cfg: AgentConfig, podCidr: string, log: Logger): Promise<Masquerade> {
    const device = await nativeDevice(cfg);
    const masquerade = device !== undefined && cfg['enable-ipv4-masquerade'] && cfg['enable-bpf-masquerade'];
    if (device === undefined) {
      if (cfg['enable-ipv4-masquerade']) log.info({ nodeIP: cfg['node-ip'] || '', devices: cfg.devices }, 'masquerade: no native device; pod traffic leaves unmasqueraded');
      return new Masquerade(dp, undefined, '');
    }
    const ports = parsePortRange(cfg['masquerade-port-range'])!;
    const nodeIP = cfg['node-ip'] || (await deviceAddress(device));
    // NodePort's SNAT to remote backends takes its ports from the same range: their replies are steered too.
    const plan: SteeringPlan = { device, natPorts: ports, nodePorts: DEFAULT_NODEPORT_RANGE, localAddrs: [nodeIP], frontends: NO_FRONTENDS };
    // Steering first: SNAT without the rules that bring the replies back would only lose traffic.
    try {
      await installSteering(plan, log);
    } catch (e) {
      log.error({ device, err: (e as Error).message }, 'north-south: steering rules not installed; masquerade off');
      // No half-applied steering: the rules that went in would send packets nobody translates.
      await installSteering({ ...plan, natPorts: null, nodePorts: null }, log).catch(() => undefined);
      return new Masquerade(dp, undefined, '');
    }
    const excluded = masquerade ? cfg['ipv4-native-routing-cidr'] || podCidr : '';
    const m = new Masquerade(dp, device, excluded);
    m.plan = plan;
    if (cfg['enable-ipv4-masquerade'] && !cfg['enable-bpf-masquerade']) {
      try {
        await installIptablesMasquerade(podCidr, cfg['ipv4-native-routing-cidr'] || podCidr, device, log);
        m.iptables = true;
      } catch (e) {
        log.error({ device, err: (e as Error).message }, 'masquerade: iptables MASQUERADE not installed; pod traffic leaves unmasqueraded');
        await removeIptablesMasquerade(log);
      }
    }
    const nodeAddr = parseIPv4(nodeIP);
    if (masquerade && cfg['enable-ip-masq-agent']) {
      m.ipMasqAgent = new IpMasqAgent(cfg['ip-masq-agent-config-path'], dp.nat.ipMasq, log);
      m.ipMasqAgent.start();
    }
    const ex = excluded ? parseCidr(excluded) : undefined;
    dp.nat.configure({
      nodeAddr, masqAddr: masquerade ? nodeAddr : 0, portMin: ports[0], portMax: ports[1],
      excludeBase: ex?.base ?? 0, excludeBits: ex?.bits ?? -1, ipMasqAgent: m.ipMasqAgent !== undefined, tunnel: cfg['routing-mode'] === 'tunnel',
    });
    m.gcTimer = setInterval(() => dp.nat.gc(NAT_GC_BUDGET, dp.ct.tcp, dp.ct.any, monoSeconds()), NAT_GC_INTERVAL_MS);
    m.gcTimer.unref();
    if (masquerade) log.info({ device, address: cfg['node-ip'], excluded, ports: cfg['masquerade-port-range'], ipMasqAgent: m.ipMasqAgent !== undefined }, 'masquerade: BPF masquerade on');
    return m;
  }

  /** Services' externalIPs and pods' hostPorts changed: their steering rules follow. */
  steerFrontends(frontends: SteeredFrontends, log: Logger): void {
    const plan = this.plan;
    if (!plan || JSON.stringify(plan.frontends) === JSON.stringify(frontends)) return;
    this.plan = { ...plan, frontends };
    const next = this.plan;
    this.installs = this.installs.then(() => installSteering(next, log)).catch((e: Error) => log.warn({ err: e.message }, 'north-south: frontend steering not updated'));
  }

  /** Whether the steering rules run (NodePort, externalIPs and hostPorts reach the datapath). */
  get steered(): boolean {
    return this.plan !== undefined;
  }

  /** status' Masquerading line, from what runs. */
  status(): DatapathFeatures['masquerade'] {
    if (this.iptables) return { mode: 'IPTables', devices: [], cidr: '' };
    if (this.device === undefined || this.dp.nat.masqAddr === 0) return undefined;
    return { mode: this.ipMasqAgent ? 'BPF (ip-masq-agent)' : 'BPF', devices: [this.device], cidr: this.excluded };
  }

  async close(log: Logger): Promise<void> {
    clearInterval(this.gcTimer);
    this.ipMasqAgent?.close();
    if (this.iptables) await removeIptablesMasquerade(log);
  }
}

/** `devices` (the first one present), else the device holding node-ip. */
async function nativeDevice(cfg: AgentConfig): Promise<string | undefined> {
  const listed = cfg.devices.split(',').map((d) => d.trim()).filter(Boolean);
  for (const d of listed) if (await deviceExists(d)) return d;
  return listed.length ? undefined : deviceOf(cfg['node-ip']);
}
