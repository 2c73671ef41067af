// NodePort allocation, service validation and the frontends a NodePort service gets.
import { describe, it, expect } from 'vitest';
import { NodePortAllocator } from '../../src/nat/node-ports.ts';
import { frontendAddresses, serviceFlags } from '../../src/nat/frontends.ts';
import { serviceTypeText } from '../../src/maps/cilium/lb.ts';
import { validateManifest } from '../../src/control/resources/validate.ts';
import type { ServiceSpec } from '../../src/control/types.ts';

const svc = (spec: Record<string, unknown>) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name: 's' }, spec: { selector: { a: 'b' }, ...spec } });

describe('NodePort allocator', () => {
  it('claims a fixed port, refuses it to another service naming the field, frees it on release', () => {
    const a = new NodePortAllocator();
    a.commit('default/a', a.plan('default/a', [{ path: 'spec.ports[0].nodePort', want: 30001 }]));
    expect(() => a.plan('default/b', [{ path: 'spec.ports[0].nodePort', want: 30001 }])).toThrow('spec.ports[0].nodePort: Invalid value: 30001: provided port is already allocated');
    expect(a.plan('default/a', [{ path: 'spec.ports[0].nodePort', want: 30001 }])).toEqual([30001]);
    a.release('default/a');
    expect(a.plan('default/b', [{ path: 'spec.ports[0].nodePort', want: 30001 }])).toEqual([30001]);
  });

  it('keeps a port the service had, picks distinct random ones in range, and says when the range is exhausted', () => {
    const a = new NodePortAllocator(() => 0, 30000, 30002);
    a.commit('x/held', [30000]);
    expect(a.plan('x/s', [{ path: 'p0' }, { path: 'p1' }])).toEqual([30001, 30002]);
    expect(a.plan('x/s', [{ path: 'p0', had: 30002 }])).toEqual([30002]);
    a.commit('x/s', [30001, 30002]);
    expect(() => a.plan('x/t', [{ path: 'spec.ports[0].nodePort' }])).toThrow('spec.ports[0].nodePort: range of valid node ports 30000-30002 is exhausted');
    expect(() => a.plan('x/t', [{ path: 'spec.ports[0].nodePort', want: 29999 }])).toThrow('provided port is not in the valid range. The range of valid ports is 30000-30002');
  });
});

describe('service validation', () => {
  it('accepts NodePort, LoadBalancer, externalTrafficPolicy and externalIPs', () => {
    expect(() => validateManifest(svc({ type: 'NodePort', externalTrafficPolicy: 'Local', ports: [{ port: 80, nodePort: 30080 }] }))).not.toThrow();
    expect(() => validateManifest(svc({ type: 'LoadBalancer', externalIPs: ['192.0.2.1'], ports: [{ port: 80 }] }))).not.toThrow();
  });

  it('names the field of a bad nodePort, policy or external IP', () => {
    expect(() => validateManifest(svc({ type: 'NodePort', ports: [{ port: 80, nodePort: 80 }] }))).toThrow('spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767');
    expect(() => validateManifest(svc({ ports: [{ port: 80, nodePort: 30080 }] }))).toThrow("spec.ports[0].nodePort: may not be used when `type` is 'ClusterIP'");
    expect(() => validateManifest(svc({ type: 'NodePort', ports: [{ name: 'a', port: 80, nodePort: 30080 }, { name: 'b', port: 81, nodePort: 30080 }] }))).toThrow('spec.ports[1].nodePort: Duplicate value: 30080');
    expect(() => validateManifest(svc({ externalTrafficPolicy: 'Local', ports: [{ port: 80 }] }))).toThrow("spec.externalTrafficPolicy: may only be set when `type` is 'NodePort' or 'LoadBalancer'");
    expect(() => validateManifest(svc({ type: 'NodePort', externalTrafficPolicy: 'local', ports: [{ port: 80 }] }))).toThrow('spec.externalTrafficPolicy: must be one of Cluster, Local');
    expect(() => validateManifest(svc({ externalIPs: ['nope'], ports: [{ port: 80 }] }))).toThrow('spec.externalIPs[0]: Invalid value: "nope"');
  });
});

describe('NodePort frontends', () => {
  const spec: ServiceSpec = { name: 'p', namespace: 'default', type: 'NodePort', ports: [{ port: 9090, targetPort: 9090, nodePort: 30001 }] };

  it('has the ClusterIP, the 0.0.0.0 surrogate and one per node address, as cilium service list', () => {
    expect(frontendAddresses(spec, '10.96.0.5', ['192.168.10.101']).map((f) => `${f.address}:${f.port} ${f.type}`))
      .toEqual(['10.96.0.5:9090 ClusterIP', '0.0.0.0:30001 NodePort', '192.168.10.101:30001 NodePort']);
  });

  it('flags: the surrogate is non-routable, Local scope shows, LoadBalancer ingress gets its own frontends', () => {
    expect(serviceTypeText(serviceFlags('NodePort', '0.0.0.0', spec))).toBe('NodePort, non-routable');
    expect(serviceTypeText(serviceFlags('NodePort', '192.168.10.101', { externalTrafficPolicy: 'Local' }))).toBe('NodePort, Local');
    expect(serviceTypeText(serviceFlags('ClusterIP', '10.96.0.5', { externalTrafficPolicy: 'Local' }))).toBe('ClusterIP, non-routable');
    expect(serviceTypeText(serviceFlags('ExternalIPs', '192.0.2.1', {}))).toBe('ExternalIPs');
    const lb = frontendAddresses({ ...spec, type: 'LoadBalancer', loadBalancerIngress: ['10.10.200.1'] }, '10.96.0.5', []);
    expect(lb.map((f) => `${f.address}:${f.port} ${f.type}`)).toEqual(['10.96.0.5:9090 ClusterIP', '0.0.0.0:30001 NodePort', '10.10.200.1:9090 LoadBalancer']);
  });
});
