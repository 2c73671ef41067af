// An L7 HTTP ingress rule on a pod whose clients are on another node, as `cilium connectivity test`'s
// echo-ingress-l7 has it (client2 → echo-other-node), in a real two-node lab over native routing: the
// proxy's answers to the remote client must leave through cilium_host to get the server's address
// back, else the client never sees a SYN-ACK from the address it dialled. GET /public passes,
// /private without the header gets the proxy's 403 "Access denied", the header lets it through, a
// client the rule does not select is dropped (Policy denied); the flows say so.
// The lab carries a per-run prefix, net and state root.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot } from '../helpers/sys.ts';
import { Lab, until } from '../helpers/lab.ts';

const root = requireRoot();
const lab = root ? new Lab('l') : (undefined as unknown as Lab);
const pod = (name: string) => lab.pod(name);

/** json-mock on 8080 on k8s-w1, the echo-ingress-l7-http policy of Cilium's connectivity test. */
const manifests = () => `apiVersion: v1
kind: Pod
metadata: {name: ${pod('echo')}, labels: {kind: echo, name: echo-other-node}}
spec:
  nodeName: k8s-w1
  containers:
  - name: echo
    image: quay.io/cilium/json-mock:v1.4.1
    env: [{name: PORT, value: "8080"}]
    ports: [{containerPort: 8080, name: http-8080}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: ${pod('echo-ingress-l7-http')}}
spec:
  endpointSelector: {matchLabels: {kind: echo}}
  ingress:
  - fromEndpoints:
    - matchLabels: {other: client}
      matchExpressions: [{key: io.cilium.k8s.policy.cluster, operator: Exists}]
    toPorts:
    - ports: [{port: "8080", protocol: TCP}]
      rules:
        http:
        - {method: GET, path: "/$"}
        - {method: GET, path: "/public$"}
        - {method: GET, path: "/private$", headers: ["X-Very-Secret-Token: 42"]}
`;

describe.skipIf(!root)('L7 ingress policy with the client on another node (native routing)', () => {
  let echoIP = '';
  /** curl as the connectivity test runs it, printing the status code; exit code and stdout. */
  const curl = async (from: string, path: string, ...extra: string[]) => {
    const r = await lab.exec('k8s-ctr', pod(from), ['curl', '-s', '--connect-timeout', '2', '--max-time', '5', '-w', '\n%{response_code}', ...extra, `http://${echoIP}:8080${path}`]);
    return { code: r.code, out: r.stdout };
  };

  beforeAll(async () => {
    await lab.up(2);
    await lab.ok('k8s-ctr', 'run', pod('client2'), '--labels', 'kind=client,other=client', '--node', 'k8s-ctr');
    await lab.ok('k8s-ctr', 'run', pod('client'), '--labels', 'kind=client', '--node', 'k8s-ctr');
    await lab.ok('k8s-ctr', 'apply', '-f', lab.file('l7.yaml', manifests()));
    echoIP = await lab.podIP('k8s-ctr', pod('echo'));
    // The policy is on w1 once client's SYN is dropped there.
    await until('the L7 policy on the echo pod', async () => ((await curl('client', '/public')).code === 28 ? true : undefined), 30_000);
  }, 300_000);

  afterAll(async () => {
    if (root) await lab.down();
  }, 120_000);

  it('client2 (other=client): GET /public and / through the proxy on w1, answered from the echo pod\'s address', async () => {
    const pub = await curl('client2', '/public');
    expect(pub.code).toBe(0);
    expect(pub.out).toContain('public information');
    expect(pub.out.endsWith('\n200')).toBe(true);
    expect((await curl('client2', '/')).out.endsWith('\n200')).toBe(true);
  });

  it("client2: GET /private is the proxy's 403 with Envoy's body, with X-Very-Secret-Token: 42 it is 200", async () => {
    const denied = await curl('client2', '/private');
    expect(denied.code).toBe(0);
    expect(denied.out).toBe('Access denied\r\n\n403');
    const allowed = await curl('client2', '/private', '-H', 'X-Very-Secret-Token: 42');
    expect(allowed.out).toContain('secret information');
    expect(allowed.out.endsWith('\n200')).toBe(true);
  });

  it('observe on w1: the denied request is an http-request DROPPED line, client (no other=client) is Policy denied', async () => {
    await curl('client2', '/private');
    expect((await curl('client', '/public')).code).toBe(28);
    const l7 = await until('the dropped request in w1\'s flows', async () => {
      const out = await lab.ok('k8s-w1', 'observe', '-t', 'l7', '--last', '20');
      return out.includes('http-request DROPPED') ? out : undefined;
    });
    expect(l7).toMatch(new RegExp(`default/${pod('client2')}:\\d+ \\(ID:\\d+\\) -> default/${pod('echo')}:8080 \\(ID:\\d+\\) http-request DROPPED \\(HTTP/1\\.1 GET http://${echoIP.replace(/\./g, '\\.')}:8080/private\\)`));
    const drops = await lab.ok('k8s-w1', 'observe', '--verdict', 'DROPPED', '--from-pod', `default/${pod('client')}`, '--last', '5');
    expect(drops).toMatch(new RegExp(`default/${pod('client')}:\\d+ \\(ID:\\d+\\) <> default/${pod('echo')}:8080 \\(ID:\\d+\\) Policy denied DROPPED \\(TCP Flags: SYN\\)`));
  });
});
