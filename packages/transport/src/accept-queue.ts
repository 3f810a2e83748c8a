/**
 * The accepted-connection queue behind a Listener's async iterator: adapters `push` connections as they
 * arrive and `end` it when the listener closes; iteration yields what was queued, then finishes.
 * Connections still queued when the consumer stops iterating early are left to the caller (see `drain`).
 */
export class AcceptQueue<T> implements AsyncIterable<T> {
  #items: T[] = [];
  #ended = false;
  #wake: (() => void) | undefined;
  #iterating = false;

  get ended(): boolean {
    return this.#ended;
  }

  get size(): number {
    return this.#items.length;
  }

  push(item: T): boolean {
    if (this.#ended) return false;
    this.#items.push(item);
    this.#signal();
    return true;
  }

  end(): void {
    this.#ended = true;
    this.#signal();
  }

  /** Remove and return everything still queued (e.g. to close them when the listener is discarded). */
  drain(): T[] {
    return this.#items.splice(0);
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    if (this.#iterating) throw new Error('this listener already has an active iterator');
    this.#iterating = true;
    const finish = (): IteratorResult<T> => {
      this.#iterating = false;
      return { done: true, value: undefined };
    };
    return {
      next: async (): Promise<IteratorResult<T>> => {
        for (;;) {
          if (!this.#iterating) return { done: true, value: undefined };
          if (this.#items.length > 0) return { done: false, value: this.#items.shift()! };
          if (this.#ended) return finish();
          await new Promise<void>((resolve) => {
            this.#wake = resolve;
          });
        }
      },
      return: async (): Promise<IteratorResult<T>> => finish(),
    };
  }

  #signal(): void {
    const wake = this.#wake;
    if (wake) {
      this.#wake = undefined;
      wake();
    }
  }
}
