// `patch KIND NAME -p JSON [--type strategic|merge|json]`: kubectl's patch, read-modify-apply through the
// resource manager (strategic merge by default: a service's ports merge by port number).
import type { ManifestResult, ResourceView } from '../control/types.ts';
import { dropTypeDependentFields, jsonPatch, mergePatch } from '../kube/patch.ts';
import { checkFlags, str, strs, type ParsedArgs } from './args.ts';
import type { AgentClient } from './client.ts';
import { AgentError, CliError, UsageError } from './errors.ts';
import type { Out } from './pods.ts';
import { resourceKind } from './resources.ts';
import { splitKind } from './services.ts';

type Json = Parameters<typeof mergePatch>[0];

export async function patchCommand(args: ParsedArgs, client: AgentClient, io: Out): Promise<number> {
  checkFlags(args, 'patch', ['namespace', 'patch', 'type']);
  const { kind: word, names } = splitKind(args.positionals);
  const info = resourceKind(word);
  if (!info) throw new UsageError(`the server doesn't have a resource type "${word ?? ''}"`);
  if (names.length !== 1) throw new UsageError(`patch needs one name: ciliary patch ${word} NAME -p '{"spec":...}'`);
  const text = str(args, 'patch');
  if (text === undefined) throw new UsageError('patch needs -p PATCH (JSON)');
  const type = strs(args, 'type').at(-1) ?? 'strategic';
  if (!['strategic', 'merge', 'json'].includes(type)) throw new UsageError(`--type must be strategic, merge or json, not "${type}"`);
  let patch: Json;
  try {
    patch = JSON.parse(text) as Json;
  } catch (e) {
    throw new CliError(`unable to parse "${text}": ${(e as Error).message}`);
  }
  const ns = info.namespaced ? (str(args, 'namespace') ?? 'default') : undefined;
  const name = names[0];
  let view: ResourceView;
  try {
    view = await client.get<ResourceView>(`/v1/resources/${info.plural}/${encodeURIComponent(name)}${ns ? `?namespace=${encodeURIComponent(ns)}` : ''}`);
  } catch (e) {
    if (e instanceof AgentError && e.statusCode === 404) throw new CliError(`${info.plural} "${name}" not found`);
    throw e;
  }
  const current = view.manifest as Json;
  const next = dropTypeDependentFields(current, type === 'json' ? jsonPatch(current, patch) : mergePatch(current, patch, type === 'strategic'));
  if (JSON.stringify(next) === JSON.stringify(current)) {
    io.out(`${info.resource}/${name} patched (no change)\n`);
    return 0;
  }
  try {
    await client.call<{ results: ManifestResult[] }>('POST', '/v1/apply', { objects: [next] });
  } catch (e) {
    if (e instanceof AgentError && e.statusCode < 500) throw new CliError(e.message);
    throw e;
  }
  io.out(`${info.resource}/${name} patched\n`);
  return 0;
}
