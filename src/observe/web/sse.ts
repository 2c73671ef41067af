// One Server-Sent Events client with a bounded backlog: while the socket is not draining, new
// flows queue up to `max`; past that the oldest are dropped and counted, and the client is told
// how many it lost (`event: lost`) before the next flow it does receive.
import type { ServerResponse } from 'node:http';

export interface SseSink {
  /** Writes a chunk; false = the kernel buffer is full, wait for 'drain'. */
  write(chunk: string): boolean;
  once(event: 'drain', cb: () => void): unknown;
}

export class SseClient {
  private readonly queue: string[] = [];
  private head = 0;
  private lost = 0;
  private waiting = false;
  /** Flows dropped for this client since it connected. */
  lostTotal = 0;
  sent = 0;

  constructor(private readonly sink: SseSink, readonly max: number) {}

  /** Queues one event (already serialised data) and writes as much as the socket takes. */
  push(event: string, data: string): void {
    this.queue.push(frame(event, data));
    if (this.queue.length - this.head > this.max) {
      this.head++;
      this.lost++;
      this.lostTotal++;
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    this.flush();
  }

  /** Frames waiting for the socket. */
  get backlog(): number {
    return this.queue.length - this.head;
  }

  /** A comment line keeps proxies and the browser from timing the stream out. */
  heartbeat(): void {
    if (!this.waiting && this.backlog === 0) this.sink.write(': keep-alive\n\n');
  }

  private flush(): void {
    if (this.waiting) return;
    while (this.head < this.queue.length) {
      if (this.lost > 0) {
        const n = this.lost;
        this.lost = 0;
        if (!this.sink.write(frame('lost', JSON.stringify({ lost: n })))) return this.wait();
      }
      const chunk = this.queue[this.head];
      this.queue[this.head++] = '';
      this.sent++;
      if (!this.sink.write(chunk)) return this.wait();
    }
    this.queue.length = 0;
    this.head = 0;
  }

  private wait(): void {
    this.waiting = true;
    this.sink.once('drain', () => {
      this.waiting = false;
      this.flush();
    });
  }
}

function frame(event: string, data: string): string {
  return `event: ${event}\ndata: ${data}\n\n`;
}

/** Headers of an event stream. */
export function startEventStream(res: ServerResponse): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  res.write('retry: 2000\n\n');
}
