// A second Kubernetes client for the kubectl tests: @kubernetes/client-node lists the pods of a namespace,
// then watches them from the list's resourceVersion, one line per event on stdout:
// `LIST rv name…` first, then `ADDED|MODIFIED|DELETED name phase podIP`. Run inside the node's namespace.
import { CoreV1Api, KubeConfig, Watch, type V1Pod } from '@kubernetes/client-node';

const [kubeconfig, namespace] = process.argv.slice(2);
const kc = new KubeConfig();
kc.loadFromFile(kubeconfig);
const api = kc.makeApiClient(CoreV1Api);
const list = await api.listNamespacedPod({ namespace });
const rv = list.metadata?.resourceVersion ?? '';
process.stdout.write(`LIST ${rv} ${list.items.map((p) => p.metadata?.name).sort().join(' ')}\n`);
await new Watch(kc).watch(`/api/v1/namespaces/${namespace}/pods`, { resourceVersion: rv }, (type: string, pod: V1Pod) => {
  process.stdout.write(`${type} ${pod.metadata?.name} ${pod.status?.phase ?? ''} ${pod.status?.podIP ?? ''}\n`);
}, (err: unknown) => {
  process.stdout.write(`END ${err ? String(err) : ''}\n`);
  process.exit(err ? 1 : 0);
});
