// A plain TCP and UDP echo server for tests: `echo-server.ts [PORT] [--tcp|--udp]` (or --port N; default 7).
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { exitOnSignals, flagValue } from './common.ts';

const argv = process.argv.slice(2);
const port = Number(flagValue(argv, 'port') ?? argv.find((a) => /^\d+$/.test(a)) ?? 7);
const tcp = !argv.includes('--udp');
const udp = !argv.includes('--tcp');

if (tcp) {
  const server = createServer((sock) => {
    sock.on('error', () => sock.destroy());
    sock.pipe(sock);
  });
  server.listen(port, () => process.stderr.write(`echo: tcp :${port}\n`));
}
if (udp) {
  const sock = createSocket({ type: 'udp6', ipv6Only: false });
  sock.on('error', () => {
    // No IPv6 in this namespace: fall back to IPv4 only.
    const v4 = createSocket('udp4');
    v4.on('error', (err) => {
      process.stderr.write(`echo: udp :${port}: ${err.message}\n`);
      process.exit(1);
    });
    v4.on('message', (msg, rinfo) => v4.send(msg, rinfo.port, rinfo.address));
    v4.bind(port, () => process.stderr.write(`echo: udp :${port}\n`));
  });
  sock.on('message', (msg, rinfo) => sock.send(msg, rinfo.port, rinfo.address));
  sock.bind(port, () => process.stderr.write(`echo: udp :${port}\n`));
}
exitOnSignals();
