// One pass at a time over a shared state (the certificate loop, the identities file reload): a trigger during a pass
// asks for one more pass right after it, and triggers meanwhile coalesce into that one.

export class SerialPasses {
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  /** `pass` handles its own errors (nobody awaits it); `idle` runs after a pass when no other was asked for. */
  constructor(
    private readonly pass: () => Promise<void>,
    private readonly idle: () => void = () => undefined,
  ) {}

  trigger(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.pass().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        this.trigger();
      } else this.idle();
    });
  }

  /** No pass starts after this; resolves when the pass in progress, if any, has ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }
}
