// src/workloads/images.ts: which program a container image + command/args/env becomes (Kubernetes semantics).
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BUILTIN_IMAGES, expandVars, STANDIN_BIN, parseImage, workloadFor, type ContainerLike, type Workload } from '../../src/workloads/images.ts';

const onPath = (name: string) =>
  (process.env.PATH ?? '').split(delimiter).some((d) => {
    try {
      accessSync(join(d, name), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });

function ok(c: ContainerLike): Workload {
  const w = workloadFor(c);
  if ('error' in w) throw new Error(`unexpected error: ${w.error}`);
  return w;
}

/** For a built-in: [name, its args]; for a host command: ['host', argv]. */
function shape(c: ContainerLike): [string, string[]] {
  const w = ok(c);
  if (w.builtin) {
    expect(w.argv.slice(0, 2)).toEqual([process.execPath, '--import']);
    expect(w.argv[2]).toMatch(/node_modules\/tsx\/dist\/esm\/index\.mjs$/);
    expect(w.argv[3]).toMatch(new RegExp(`src/workloads/${w.builtin}\\.ts$`));
    return [w.builtin, w.argv.slice(4)];
  }
  return ['host', w.argv];
}

describe('workloadFor', () => {
  const DIGEST = 'sha256:833d915ec68fca3ce83668fc5dae97c455b2134d8f23ef96586f55b894cfb1e8';
  const cases: Array<[string, ContainerLike, [string, string[]]]> = [
    ['whoami, bare', { image: 'traefik/whoami' }, ['whoami', []]],
    ['whoami, registry + tag, args pass through', { image: 'docker.io/traefik/whoami:v1.10', args: ['--port', '8080'] }, ['whoami', ['--port', '8080']]],
    ['whoami, command naming the binary', { image: 'traefik/whoami:latest', command: ['/whoami'], args: ['-name', 'w1'] }, ['whoami', ['-name', 'w1']]],
    ['whoami, other command runs on the host', { image: 'traefik/whoami', command: ['sleep', 'infinity'] }, ['host', ['sleep', 'infinity']]],
    ['starwars from quay with digest', { image: `quay.io/cilium/starwars:v2.1@${DIGEST}` }, ['deathstar', []]],
    ['starwars, docker.io, any tag', { image: 'docker.io/cilium/starwars:v1.0' }, ['deathstar', []]],
    ['starwars with a command', { image: 'cilium/starwars', command: ['/bin/sh', '-c', 'sleep infinity'] }, ['host', ['/bin/sh', '-c', 'sleep infinity']]],
    ['json-mock (tiefighter/xwing)', { image: `quay.io/cilium/json-mock:v1.3.8@${DIGEST}` }, ['json-mock', []]],
    ['netshoot without command idles', { image: 'nicolaka/netshoot' }, ['idle', []]],
    ['netshoot with command + args', { image: 'nicolaka/netshoot', command: ['tail'], args: ['-f', '/dev/null'] }, ['host', ['tail', '-f', '/dev/null']]],
    ['netshoot, args only (CMD-only image)', { image: 'nicolaka/netshoot:v0.13', args: ['sleep', 'infinity'] }, ['host', ['sleep', 'infinity']]],
    ['busybox', { image: 'busybox:1.36' }, ['idle', []]],
    ['alpine via docker.io/library', { image: 'docker.io/library/alpine:3.20' }, ['idle', []]],
    ['ubuntu with sh -c', { image: 'ubuntu:24.04', command: ['/bin/sh', '-c', 'sleep infinity'] }, ['host', ['/bin/sh', '-c', 'sleep infinity']]],
    ['cilium alpine-curl', { image: 'quay.io/cilium/alpine-curl:v1.10.0' }, ['idle', []]],
    ['curl image, options go to curl', { image: 'curlimages/curl:8.8.0', args: ['-s', 'http://webpod'] }, ['host', ['curl', '-s', 'http://webpod']]],
    ['curl image, a program runs as is', { image: 'quay.io/curl/curl:8.11.0', args: ['sleep', '1000'] }, ['host', ['sleep', '1000']]],
    ['curl image without anything idles', { image: 'curlimages/curl' }, ['idle', []]],
    ['netperf client (seed lab: args sleep infinity)', { image: 'cilium/netperf', args: ['sleep', 'infinity'] }, ['host', ['sleep', 'infinity']]],
    ['nginx', { image: 'nginx' }, ['nginx', []]],
    ['nginx, default CMD written out', { image: 'nginx:1.27', args: ['nginx', '-g', 'daemon off;'] }, ['nginx', ['-g', 'daemon off;']]],
    ['nginx with a command', { image: 'nginx', command: ['sleep', '5'] }, ['host', ['sleep', '5']]],
    ['echo-server', { image: 'ciliary/echo-server', args: ['9000'] }, ['echo-server', ['9000']]],
    ['coredns as kubeadm runs it', { image: 'registry.k8s.io/coredns/coredns:v1.12.0', args: ['-conf', '/etc/coredns/Corefile'] }, ['coredns', ['-conf', '/etc/coredns/Corefile']]],
    ['coredns with its entrypoint', { image: 'coredns/coredns', command: ['/coredns'], args: ['-dns.port', '1053'] }, ['coredns', ['-dns.port', '1053']]],
    ['unknown image with a command', { image: 'registry.example.com/acme/app:1.2', command: ['sleep'], args: ['30'] }, ['host', ['sleep', '30']]],
    ['missing absolute path falls back to PATH', { image: 'alpine', command: ['/opt/nowhere/sleep', '1'] }, ['host', ['sleep', '1']]],
  ];
  it.each(cases)('%s', (_name, container, expected) => {
    expect(shape(container)).toEqual(expected);
  });

  it.runIf(onPath('iperf3'))('iperf3 images: iperf3 -s by default, args replace -s', () => {
    expect(shape({ image: 'networkstatic/iperf3' })).toEqual(['host', ['iperf3', '-s']]);
    expect(shape({ image: 'mlabbe/iperf3:3.16', args: ['-s', '-p', '5202'] })).toEqual(['host', ['iperf3', '-s', '-p', '5202']]);
    expect(shape({ image: 'ghcr.io/someone/iperf3-server:1' })).toEqual(['host', ['iperf3', '-s']]);
  });

  it('netperf server: the host\'s netserver -D, else the stand-in (iperf3 -s) with a note', () => {
    const w = ok({ image: 'cilium/netperf', ports: [{ containerPort: 12865 }] });
    if (onPath('netserver')) {
      expect(w.argv).toEqual(['netserver', '-D']);
      expect(w.note).toBeUndefined();
    } else {
      expect(w.argv).toEqual([join(STANDIN_BIN, 'netserver'), '-D']);
      expect(w.note).toMatch(/netserver is not installed on this host; ciliary's stand-in runs/);
    }
  });

  it('a container command `netperf` finds the stand-in when the host has none', () => {
    const w = ok({ image: 'cilium/netperf', command: ['netperf', '-t', 'TCP_MAERTS', '-H', '10.0.0.1'] });
    expect(w.argv).toEqual([onPath('netperf') ? 'netperf' : join(STANDIN_BIN, 'netperf'), '-t', 'TCP_MAERTS', '-H', '10.0.0.1']);
  });

  it('unknown image without a command is refused', () => {
    expect(workloadFor({ image: 'example.com/acme/app:1.0' })).toEqual({
      error: 'image "example.com/acme/app:1.0" has no built-in equivalent in ciliary; give the container a command',
    });
    expect(workloadFor({ image: 'acme/app', args: ['serve'] })).toHaveProperty('error');
  });

  it('a command missing on the host is an error, not a crash loop', () => {
    const w = workloadFor({ image: 'busybox', command: ['no-such-binary-ciliary'] });
    expect(w).toEqual({ error: 'image "busybox": executable "no-such-binary-ciliary" not found on the host (PATH)' });
  });

  it('env becomes a map; $(VAR) expands in env, command and args; $$ escapes', () => {
    const w = ok({
      image: 'nicolaka/netshoot',
      env: [{ name: 'TARGET', value: 'webpod' }, { name: 'URL', value: 'http://$(TARGET)/' }, { name: 'EMPTY' }],
      command: ['sh', '-c'],
      args: ['curl -s $(URL) # $$(TARGET) $(UNSET)'],
    });
    expect(w.env).toEqual({ TARGET: 'webpod', URL: 'http://webpod/', EMPTY: '' });
    expect(w.argv).toEqual(['sh', '-c', 'curl -s http://webpod/ # $(TARGET) $(UNSET)']);
    const who = ok({ image: 'traefik/whoami', env: [{ name: 'WHOAMI_PORT_NUMBER', value: '8080' }] });
    expect(who.env).toEqual({ WHOAMI_PORT_NUMBER: '8080' });
    expect(expandVars('$(A)$(B)$$', { A: 'x' })).toBe('x$(B)$');
  });

  it('built-in argv points at files that exist', () => {
    const w = ok({ image: 'traefik/whoami' });
    expect(existsSync(w.argv[2])).toBe(true);
    expect(existsSync(w.argv[3])).toBe(true);
  });
});

describe('parseImage', () => {
  it.each([
    ['nginx', { registry: 'docker.io', repository: 'nginx', tag: 'latest' }],
    ['docker.io/library/nginx:1.27', { registry: 'docker.io', repository: 'nginx', tag: '1.27' }],
    ['quay.io/cilium/starwars:v2.1@sha256:abc', { registry: 'quay.io', repository: 'cilium/starwars', tag: 'v2.1', digest: 'sha256:abc' }],
    ['localhost:5000/team/app', { registry: 'localhost:5000', repository: 'team/app', tag: 'latest' }],
    ['Traefik/WhoAmI:v1.10', { registry: 'docker.io', repository: 'traefik/whoami', tag: 'v1.10' }],
  ])('%s', (ref, expected) => {
    expect(parseImage(ref)).toEqual(expected);
  });

  it('BUILTIN_IMAGES lists the seeds\' images', () => {
    const all = BUILTIN_IMAGES.flatMap((e) => e.repositories);
    for (const r of ['traefik/whoami', 'cilium/starwars', 'cilium/json-mock', 'nicolaka/netshoot', 'cilium/netperf', 'nginx']) expect(all).toContain(r);
  });
});
