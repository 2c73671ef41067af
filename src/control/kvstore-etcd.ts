// The kvstore over etcd, as Cilium's kvstore mode: an etcd3 (gRPC) client whose watches resync by
// difference after a lost connection and whose leases are granted again, keys re-put, after expiring.
import { ConsecutiveBreaker, ExponentialBackoff, circuitBreaker, handleWhen, isBrokenCircuitError, noop, retry, type IBackoff, type IPolicy } from 'cockatiel';
import { Etcd3, EtcdLeaseInvalidError, GRPCDeadlineExceededError, isRecoverableError, type IOptions, type Lease, type Watcher } from 'etcd3';
import { etcdConnection, type EtcdConnection } from './kvstore-etcd-options.ts';
import { checkUse, KVUnreachableError, type KVEvent, type KVHealth, type KVLease, type KVPair, type KVStore, type KVWatch, type KVWriteOptions } from './kvstore.ts';

/** A call that gets no answer within this long rejects (a black-holed etcd, not only a refused one). */
const CALL_TIMEOUT_MS = 3000;
const PROBE_INTERVAL_MS = 1000;
const PROBE_TIMEOUT_MS = 1000;
/** Reconnect backoff of watches and lease grants: doubling from the minimum, capped. */
const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 2000;
/** A host whose calls failed this many times in a row is skipped for BREAKER_OPEN_MS. */
const BREAKER_FAILURES = 3;
const BREAKER_OPEN_MS = 1000;

/** Client settings: calls time out, failing hosts are skipped a while, watch streams reconnect with backoff. */
function clientOptions(conn: EtcdConnection, hosts: string[], fault: { global: IPolicy; host: () => IPolicy; timeoutMs: number }): IOptions {
  return {
    hosts,
    credentials: conn.credentials,
    auth: conn.auth,
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + fault.timeoutMs }),
    faultHandling: {
      host: fault.host,
      global: fault.global,
      // etcd3 uses this as a factory (next() for a fresh backoff), as its own default ExponentialBackoff.
      watchBackoff: new ExponentialBackoff({ initialDelay: BACKOFF_MIN_MS, maxDelay: BACKOFF_MAX_MS }) as unknown as IBackoff<unknown>,
    },
  };
}

function isUnreachable(e: unknown): boolean {
  return e instanceof Error && (isRecoverableError(e) || isBrokenCircuitError(e) || e instanceof GRPCDeadlineExceededError || /etcdserver: (request timed out|no leader|leader changed)/.test(e.message));
}

// grpc-js ends its messages with an empty "Resolution note:" when name resolution played no part.
const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e)).replace(/\.? Resolution note: ?$/, '');

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());
const nextBackoff = (ms: number) => Math.min(ms * 2, BACKOFF_MAX_MS);

export class EtcdKVStore implements KVStore {
  readonly endpoints: string[];
  /** Calls through every endpoint; a failed one is retried once per other endpoint. */
  private readonly client: Etcd3;
  /** One client per endpoint for the health probe, so status counts each member. */
  private readonly probes: Etcd3[];
  private readonly watches = new Set<EtcdWatch>();
  private readonly leases = new Set<EtcdLease>();
  /** Keys written with one of this store's leases, so a later plain put or delete detaches them. */
  private readonly leasedKeys = new Map<string, EtcdLease>();
  private readonly probeTimer: NodeJS.Timeout;
  /** Per endpoint, what the last probe found ("http://…:2379 - 3.4.23 (Leader)" or its error). */
  private probed: Array<{ up: boolean; text: string }>;
  /** The error of the last call that could not reach etcd, until a probe succeeds again. */
  private lastFailure?: string;
  private probing = false;
  private closed = false;

  private constructor(conn: EtcdConnection) {
    this.endpoints = conn.endpoints;
    const hosts = conn.endpoints;
    this.client = new Etcd3(clientOptions(conn, hosts, {
      global: hosts.length > 1 ? retry(handleWhen(isUnreachable), { maxAttempts: hosts.length - 1 }) : noop,
      host: () => circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: BREAKER_OPEN_MS, breaker: new ConsecutiveBreaker(BREAKER_FAILURES) }),
      timeoutMs: CALL_TIMEOUT_MS,
    }));
    // Probes see each member's own error, never a breaker's.
    this.probes = hosts.map((h) => new Etcd3(clientOptions(conn, [h], { global: noop, host: () => noop, timeoutMs: PROBE_TIMEOUT_MS })));
    this.probed = hosts.map((h) => ({ up: false, text: `${h} - not probed yet` }));
    this.probeTimer = setInterval(() => void this.probe(), PROBE_INTERVAL_MS);
    this.probeTimer.unref();
  }

  /** Connects lazily: an unreachable etcd gives a failing health() and rejected calls, never a throw here. */
  static async open(opts: Record<string, string>): Promise<EtcdKVStore> {
    const store = new EtcdKVStore(etcdConnection(opts));
    await store.probe();
    return store;
  }

  async get(key: string): Promise<string | undefined> {
    this.check(key);
    return (await this.call(() => this.client.get(key).string())) ?? undefined;
  }

  async put(key: string, value: string, opts?: KVWriteOptions): Promise<void> {
    this.check(key, value);
    const lease = this.ownLease(opts);
    if (!lease) {
      await this.call(() => this.client.put(key).value(value).exec());
      this.track(key);
      return;
    }
    await this.withLease(lease, (id) => this.client.put(key).value(value).lease(id).exec());
    this.track(key, value, lease);
  }

  async delete(key: string): Promise<boolean> {
    this.check(key);
    const res = await this.call(() => this.client.delete().key(key).exec());
    this.track(key);
    return res.deleted !== '0';
  }

  async list(prefix: string): Promise<KVPair[]> {
    this.check();
    return (await this.call(() => this.range(prefix))).pairs;
  }

  async createOnly(key: string, value: string, opts?: KVWriteOptions): Promise<boolean> {
    this.check(key, value);
    const lease = this.ownLease(opts);
    const txn = (id?: string) => {
      const put = this.client.put(key).value(value);
      return this.client.if(key, 'Create', '==', 0).then(id === undefined ? put : put.lease(id)).commit();
    };
    const res = lease ? await this.withLease(lease, txn) : await this.call(() => txn());
    if (res.succeeded) this.track(key, value, lease);
    return res.succeeded;
  }

  watch(prefix: string, onEvent: (e: KVEvent) => void): KVWatch {
    this.check();
    const w = new EtcdWatch(this, prefix, onEvent, () => this.watches.delete(w));
    this.watches.add(w);
    return w;
  }

  async grantLease(ttlSeconds: number): Promise<KVLease> {
    this.check();
    const lease = new EtcdLease(this, ttlSeconds, () => this.dropLease(lease));
    try {
      await this.call(() => lease.liveId());
    } catch (e) {
      lease.close();
      throw e;
    }
    this.leases.add(lease);
    return lease;
  }

  health(): KVHealth {
    if (this.closed) return { ok: false, message: 'closed' };
    if (this.lastFailure !== undefined) return { ok: false, message: this.lastFailure };
    const up = this.probed.filter((p) => p.up).length;
    const summary = `${up}/${this.probed.length} connected, leases=${this.leases.size}: ${this.probed.map((p) => p.text).join('; ')}`;
    return up > 0 ? { ok: true, message: `etcd: ${summary}` } : { ok: false, message: `kvstore etcd unreachable: ${summary}` };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.probeTimer);
    for (const w of this.watches) w.close();
    // Leases are released, not revoked: their keys stay until the TTL runs out, as after a crash.
    for (const l of this.leases) l.close();
    for (const c of [this.client, ...this.probes]) c.close();
  }

  // Below: what EtcdWatch and EtcdLease use of their store.

  get where(): string {
    return this.endpoints.join(',');
  }

  /** Pairs under a prefix in key order, with the revision they were read at. */
  async range(prefix: string): Promise<{ pairs: KVPair[]; revision: string }> {
    const res = await this.client.getAll().prefix(prefix).sort('Key', 'Ascend').exec();
    return { pairs: res.kvs.map((kv) => ({ key: kv.key.toString(), value: kv.value.toString() })), revision: res.header.revision };
  }

  get etcd(): Etcd3 {
    return this.client;
  }

  /** Runs one etcd call; a failure to reach etcd marks health and rejects with where it went. */
  async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw this.failure(e);
    }
  }

  failure(e: unknown): Error {
    const msg = errorText(e);
    if (!isUnreachable(e)) return new Error(`kvstore etcd at ${this.where}: ${msg}`);
    const err = new KVUnreachableError(`kvstore etcd unreachable at ${this.where}: ${msg}`);
    this.lastFailure = err.message;
    return err;
  }

  /** Re-puts a key of a lease granted again; a plain put of the same key since then wins. */
  async reput(key: string, value: string, lease: EtcdLease, id: string): Promise<void> {
    if (this.leasedKeys.get(key) === lease) await this.call(() => this.client.put(key).value(value).lease(id).exec());
  }

  private async withLease<T>(lease: EtcdLease, op: (id: string) => Promise<T>): Promise<T> {
    try {
      return await op(await lease.liveId());
    } catch (e) {
      // The lease expired on the server before its keepalive noticed (an outage): grant it again first.
      if (!(e instanceof EtcdLeaseInvalidError)) throw this.failure(e);
      return this.call(async () => op(await lease.renew()));
    }
  }

  private track(key: string, value?: string, lease?: EtcdLease): void {
    this.leasedKeys.get(key)?.keys.delete(key);
    this.leasedKeys.delete(key);
    if (!lease || value === undefined) return;
    lease.keys.set(key, value);
    this.leasedKeys.set(key, lease);
  }

  private dropLease(lease: EtcdLease): void {
    this.leases.delete(lease);
    for (const key of lease.keys.keys()) this.leasedKeys.delete(key);
    lease.keys.clear();
  }

  private ownLease(opts?: KVWriteOptions): EtcdLease | undefined {
    const lease = opts?.lease;
    if (lease === undefined) return undefined;
    if (!(lease instanceof EtcdLease) || !this.leases.has(lease)) throw new Error(`kvstore etcd: lease ${lease.id} was not granted by this store or is revoked`);
    return lease;
  }

  private async probe(): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    const results = await Promise.all(this.probes.map((p) => p.maintenance.status().then((s) => ({ s }), (e: Error) => ({ e }))));
    this.probing = false;
    this.probed = results.map((r, i) => ('s' in r
      ? { up: true, text: `${this.endpoints[i]} - ${r.s.version}${r.s.leader === r.s.header.member_id ? ' (Leader)' : ''}` }
      : { up: false, text: `${this.endpoints[i]} - ${errorText(r.e)}` }));
    if (this.probed.some((p) => p.up)) this.lastFailure = undefined;
  }

  private check(key?: string, value?: string): void {
    checkUse(this.closed, key, value);
  }
}

/**
 * Lists the prefix, delivers the difference to what this watch delivered before, then follows
 * changes from the listed revision; any break of the stream starts over with a fresh listing.
 */
class EtcdWatch implements KVWatch {
  readonly ready: Promise<void>;
  private markReady!: () => void;
  /** What the watcher has been told: the base of the next difference. */
  private readonly view = new Map<string, string>();
  private watcher?: Watcher;
  private closed = false;
  private backoff = BACKOFF_MIN_MS;

  constructor(private readonly store: EtcdKVStore, private readonly prefix: string, private readonly onEvent: (e: KVEvent) => void, private readonly onClose: () => void) {
    this.ready = new Promise((resolve) => (this.markReady = resolve));
    void this.sync();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopWatcher();
    this.onClose();
  }

  private async sync(): Promise<void> {
    while (!this.closed) {
      try {
        const { pairs, revision } = await this.store.call(() => this.store.range(this.prefix));
        if (this.closed) return;
        const now = new Map(pairs.map((p) => [p.key, p.value]));
        for (const [key, value] of now) if (this.view.get(key) !== value) this.deliver({ type: 'put', key, value, revision });
        for (const key of [...this.view.keys()]) if (!now.has(key)) this.deliver({ type: 'delete', key, revision });
        this.follow(BigInt(revision) + 1n);
        this.markReady();
        return;
      } catch {
        await sleep(this.backoff);
        this.backoff = nextBackoff(this.backoff);
      }
    }
  }

  private follow(fromRevision: bigint): void {
    const w = this.store.etcd.watch().prefix(this.prefix).startRevision(fromRevision.toString()).watcher();
    this.watcher = w;
    w.on('connected', () => (this.backoff = BACKOFF_MIN_MS));
    w.on('put', (kv) => this.deliver({ type: 'put', key: kv.key.toString(), value: kv.value.toString(), revision: kv.mod_revision }));
    w.on('delete', (kv) => this.deliver({ type: 'delete', key: kv.key.toString(), revision: kv.mod_revision }));
    const restart = (e: Error) => {
      if (this.watcher !== w) return;
      this.store.failure(e);
      this.stopWatcher();
      void sleep(this.backoff).then(() => this.sync());
    };
    // The client would resume from its last revision on its own; a fresh listing also survives compaction.
    w.on('disconnected', restart);
    w.on('error', restart);
  }

  private stopWatcher(): void {
    const w = this.watcher;
    this.watcher = undefined;
    w?.cancel().catch(() => undefined);
  }

  private deliver(e: KVEvent): void {
    if (this.closed) return;
    if (e.type === 'put') this.view.set(e.key, e.value);
    else if (!this.view.delete(e.key)) return;
    try {
      this.onEvent(e);
    } catch (err) {
      // A throwing handler must not take down the client's stream (and with it the agent).
      process.emitWarning(`kvstore watch handler for "${this.prefix}" threw on ${e.type} ${e.key}: ${(err as Error).message}`);
    }
  }
}

/**
 * An etcd lease kept alive by the client; when etcd reports it gone (expired during an outage), a
 * new one is granted with backoff and every key written with it is put again.
 */
class EtcdLease implements KVLease {
  /** Keys written with this lease → their values. */
  readonly keys = new Map<string, string>();
  private current!: Lease;
  private granted!: Promise<string>;
  private grantedId = '0';
  private renewing?: Promise<string>;
  private stopped = false;

  constructor(private readonly store: EtcdKVStore, readonly ttlSeconds: number, private readonly onEnd: () => void) {
    this.grant();
  }

  /** The current etcd lease ID in hex, as `etcdctl lease list` prints it. */
  get id(): string {
    return BigInt(this.grantedId).toString(16);
  }

  liveId(): Promise<string> {
    return this.granted;
  }

  /** Grants a new lease (retrying with backoff until etcd answers) and re-puts the keys. */
  renew(): Promise<string> {
    this.renewing ??= this.regrant().finally(() => (this.renewing = undefined));
    return this.renewing;
  }

  async revoke(): Promise<void> {
    if (this.stopped) return;
    const lease = this.current;
    this.close();
    await this.store.call(() => lease.revoke());
  }

  close(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.current.release();
    this.onEnd();
  }

  private grant(): void {
    const lease = this.store.etcd.lease(this.ttlSeconds);
    this.current = lease;
    this.granted = lease.grant();
    this.granted.catch(() => undefined);
    let alive = false;
    void this.granted.then((id) => {
      alive = true;
      this.grantedId = id;
    }, () => undefined);
    // 'lost' also reports a grant that never succeeded; only a lease once alive is renewed from here.
    lease.on('lost', () => {
      if (alive && lease === this.current && !this.stopped) void this.renew().catch(() => undefined);
    });
  }

  private async regrant(): Promise<string> {
    let backoff = BACKOFF_MIN_MS;
    for (;;) {
      if (this.stopped) throw new Error('kvstore etcd: lease revoked or store closed');
      this.current.release();
      this.grant();
      try {
        const id = await this.store.call(() => this.granted);
        for (const [key, value] of this.keys) await this.store.reput(key, value, this, id);
        return id;
      } catch {
        await sleep(backoff);
        backoff = nextBackoff(backoff);
      }
    }
  }
}
