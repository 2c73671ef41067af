// The agent's logger: pino JSON lines for machines, pino-pretty for people at a terminal.
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type LogFormat = 'json' | 'pretty' | 'auto';

export interface LoggerOptions {
  debug?: boolean;
  format?: LogFormat;
  name?: string;
  /** Where lines go (tests); stdout by default. */
  destination?: NodeJS.WritableStream;
  /** Whether stdout is a terminal; read from process.stdout when omitted. */
  isTTY?: boolean;
}

export type { Logger };

/** Pretty when asked for, or when `auto` and stdout is a terminal; JSON otherwise. */
export function usePretty(format: LogFormat = 'auto', isTTY = Boolean(process.stdout.isTTY)): boolean {
  return format === 'pretty' || (format === 'auto' && isTTY);
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.debug ? 'debug' : 'info';
  const base = { level, name: opts.name };
  if (usePretty(opts.format, opts.isTTY)) {
    // A synchronous pretty stream in-process: no worker thread to lose lines on a crash.
    const stream = pretty({ colorize: opts.destination ? false : Boolean(process.stdout.isTTY), translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', destination: (opts.destination ?? 1) as never, sync: true });
    return pino(base, stream);
  }
  return opts.destination ? pino(base, opts.destination) : pino(base);
}

/** Logger settings out of the agent configuration keys. */
export function loggerFromConfig(cfg: { debug: boolean; 'log-format': LogFormat; 'node-name'?: string }, destination?: NodeJS.WritableStream): Logger {
  return createLogger({ debug: cfg.debug, format: cfg['log-format'], name: 'ciliary-agent', destination });
}
