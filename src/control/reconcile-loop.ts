// One run of a reconcile job at a time: a request during a run makes it run once more afterwards,
// so a burst of changes costs at most one extra run.
export class ReconcileLoop {
  private running?: Promise<void>;
  private again = false;

  constructor(
    private readonly run: () => Promise<void>,
    private readonly onError: (err: Error) => void,
  ) {}

  /** Runs the job now, or once more after the run in progress. */
  request(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          await this.run();
        } catch (err) {
          this.onError(err as Error);
        }
      } while (this.again);
      this.running = undefined;
    })();
  }

  /** Resolves once no run is in progress. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }
}
