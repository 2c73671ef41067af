// A container with nothing to run (netshoot, curl, busybox, alpine… without a command): stay up until told to stop.
const keepAlive = setInterval(() => {}, 1 << 30);
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
  process.on(sig, () => {
    clearInterval(keepAlive);
    process.exit(0);
  });
}
