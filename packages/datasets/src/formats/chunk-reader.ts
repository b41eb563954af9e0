/** Exact-size reads from a stream of chunks (tar bodies, inflated zip entries). */
/** Pulls exact byte counts from an async chunk stream. */
export class ChunkReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private done = false;
  total = 0;
  constructor(private readonly source: AsyncIterator<Buffer>) {}

  private async fill(n: number): Promise<boolean> {
    while (this.buffered < n && !this.done) {
      const next = await this.source.next();
      if (next.done) {
        this.done = true;
        break;
      }
      this.chunks.push(next.value);
      this.buffered += next.value.length;
    }
    return this.buffered >= n;
  }

  /** Exactly `n` bytes, or undefined at a clean end of stream (no bytes left). */
  async read(n: number): Promise<Buffer | undefined> {
    if (!(await this.fill(n))) {
      if (this.buffered === 0) return undefined;
      const got = this.buffered;
      this.chunks = [];
      this.buffered = 0;
      throw new ShortRead(got, n);
    }
    this.total += n;
    const head = this.chunks[0];
    if (head.length >= n) {
      // Common case (headers): no copy of the buffered megabyte.
      const result = Buffer.from(head.subarray(0, n));
      if (head.length === n) this.chunks.shift();
      else this.chunks[0] = head.subarray(n);
      this.buffered -= n;
      return result;
    }
    const out = Buffer.concat(this.chunks, this.buffered);
    const result = out.subarray(0, n);
    const rest = out.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.buffered = rest.length;
    return n === out.length ? out : Buffer.from(result);
  }

  /** A copy of the next `n` bytes (fewer at the end of the stream), without consuming them. */
  async peek(n: number): Promise<Buffer> {
    await this.fill(n);
    const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    this.chunks = all.length ? [all] : [];
    return Buffer.from(all.subarray(0, Math.min(n, all.length)));
  }

  /**
   * Read the source to its end, so a checking source (a zip entry's CRC-32) runs its final
   * check; returns the number of bytes that were still unread (dropped).
   */
  async end(): Promise<number> {
    let left = this.buffered;
    this.chunks = [];
    this.buffered = 0;
    while (!this.done) {
      const next = await this.source.next();
      if (next.done) this.done = true;
      else left += next.value.length;
    }
    this.total += left;
    return left;
  }

  /** Stop pulling: lets the source release its file (its `finally` runs). */
  async close(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.source.return?.();
  }

  async skip(n: number): Promise<void> {
    let left = n;
    while (left > 0) {
      if (!(await this.fill(1))) throw new ShortRead(n - left, n);
      const head = this.chunks[0];
      const k = Math.min(left, head.length);
      if (k === head.length) this.chunks.shift();
      else this.chunks[0] = head.subarray(k);
      this.buffered -= k;
      left -= k;
      this.total += k;
    }
  }
}

export class ShortRead extends Error {
  constructor(
    readonly got: number,
    readonly wanted: number,
  ) {
    super(`short read: ${got} of ${wanted} bytes`);
  }
}
