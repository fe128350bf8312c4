// How many live event streams the web holds open, in all and per client address. Each
// stream is a socket and ~30 KB for as long as the browser stays; without a ceiling one
// client can open streams until the process runs out of file descriptors and nothing
// else (health checks, submits) gets an answer.

export type Admission =
  { ok: true; release: () => void } | { ok: false; status: 429 | 503; retryAfterSeconds: number; reason: string };

export interface StreamLimits {
  max: number;
  perClient: number;
}

/** Counts open streams; the map holds only clients with a stream open, so the total cap bounds it. */
export class StreamQuota {
  private total = 0;
  private readonly byClient = new Map<string, number>();

  constructor(private readonly limits: StreamLimits) {}

  /** Whether a new stream from `client` would be admitted, without taking a place. */
  check(client: string): Admission | { ok: true } {
    if ((this.byClient.get(client) ?? 0) >= this.limits.perClient) {
      return {
        ok: false,
        status: 429,
        retryAfterSeconds: 30,
        reason: `at most ${this.limits.perClient} live streams per client`,
      };
    }
    if (this.total >= this.limits.max) {
      // Jittered, so the refused browsers do not all come back in the same second.
      return {
        ok: false,
        status: 503,
        retryAfterSeconds: 10 + Math.floor(Math.random() * 20),
        reason: "the server holds as many live streams as it can",
      };
    }
    return { ok: true };
  }

  /** Takes a place for a stream, or says why not; release() gives it back (once). */
  admit(client: string): Admission {
    const verdict = this.check(client);
    if (!verdict.ok) return verdict;
    this.total += 1;
    this.byClient.set(client, (this.byClient.get(client) ?? 0) + 1);
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        this.total -= 1;
        const left = (this.byClient.get(client) ?? 1) - 1;
        if (left === 0) this.byClient.delete(client);
        else this.byClient.set(client, left);
      },
    };
  }

  get open(): number {
    return this.total;
  }
}
