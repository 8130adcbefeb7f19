// Global token bucket for exchanges (`--verify-qps`, `--verify-burst`, docs/verified-start.md#controller-flags).
import type { Clock } from '../runtime/clock.ts';

export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly qps: number,
    private readonly burst: number,
    private readonly clock: Clock,
  ) {
    this.tokens = burst;
    this.last = clock.now();
  }

  /** Milliseconds to wait before a token is available (0 = take one now). Takes the token when it returns 0. */
  tryTake(): number {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps);
    this.last = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - this.tokens) / this.qps) * 1000);
  }

  async take(signal?: AbortSignal): Promise<void> {
    for (;;) {
      const wait = this.tryTake();
      if (wait === 0 || signal?.aborted) return;
      await this.clock.sleep(wait, signal);
    }
  }
}
