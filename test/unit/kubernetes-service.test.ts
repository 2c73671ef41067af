// The kubernetes service's pieces: the address an API server advertises, the objects kube-apiserver
// keeps, and the API server addresses every agent reads back from them.
import { describe, expect, it } from 'vitest';
import { advertisedAddress, kubeApiServerIPs, kubernetesEndpoints, kubernetesService } from '../../src/control/kubernetes-service.ts';

describe('kubernetes service', () => {
  it('advertises the listen host, the node IP for a wildcard listen, nothing for loopback', () => {
    expect(advertisedAddress('192.168.10.100:6443', '192.168.10.100')).toEqual({ ip: '192.168.10.100', port: 6443 });
    expect(advertisedAddress(':6443', '192.168.10.101')).toEqual({ ip: '192.168.10.101', port: 6443 });
    expect(advertisedAddress('0.0.0.0:8443', '10.0.0.5')).toEqual({ ip: '10.0.0.5', port: 8443 });
    expect(advertisedAddress('127.0.0.1:6443', '192.168.10.100')).toBeUndefined();
    expect(advertisedAddress(':6443', '')).toBeUndefined();
  });

  it('the Service is 10.96.0.1:443 https to the API port; Endpoints and EndpointSlice list every API server once; read back as addresses', () => {
    expect(kubernetesService(6443)).toMatchObject({ metadata: { name: 'kubernetes', namespace: 'default' }, spec: { clusterIP: '10.96.0.1', ports: [{ name: 'https', port: 443, protocol: 'TCP', targetPort: 6443 }] } });
    const [ep, slice] = kubernetesEndpoints([{ ip: '192.168.10.101', port: 6443 }, { ip: '192.168.10.100', port: 6443 }, { ip: '192.168.10.100', port: 6443 }]);
    expect(ep).toMatchObject({ kind: 'Endpoints', subsets: [{ addresses: [{ ip: '192.168.10.100' }, { ip: '192.168.10.101' }], ports: [{ name: 'https', port: 6443 }] }] });
    expect(slice).toMatchObject({ kind: 'EndpointSlice', metadata: { labels: { 'kubernetes.io/service-name': 'kubernetes' } }, addressType: 'IPv4' });
    const objects: Record<string, unknown> = { Endpoints: ep, EndpointSlice: { ...slice, endpoints: [{ addresses: ['10.0.0.9'] }] } };
    const resources = { get: (kind: string, ns: string | undefined, name: string) => (ns === 'default' && name === 'kubernetes' && objects[kind] ? { manifest: objects[kind] } as never : undefined) };
    expect(kubeApiServerIPs(resources)).toEqual(['10.0.0.9', '192.168.10.100', '192.168.10.101']);
    expect(kubeApiServerIPs({ get: () => undefined })).toEqual([]);
  });
});
