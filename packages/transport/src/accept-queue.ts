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

  /** True once `end` was called; pushes are then refused. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Connections queued and not yet taken by the iterator. */
  get size(): number {
    return this.#items.length;
  }

  /** Queue an accepted connection and wake the iterator; false (nothing queued) once the queue has ended. */
  push(item: T): boolean {
    if (this.#ended) return false;
    this.#items.push(item);
    this.#signal();
    return true;
  }

  /** End the queue: the iterator yields what is still queued, then finishes. */
  end(): void {
    this.#ended = true;
    this.#signal();
  }

  /** Remove and return everything still queued (e.g. to close them when the listener is discarded). */
  drain(): T[] {
    return this.#items.splice(0);
  }

  /** The queued items in arrival order, waiting for more until `end`; only one iterator may be active at a time. */
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
