type Listener<T> = (value: T) => void | Promise<void>;

/** A small typed event emitter that works the same in browsers and Node. */
export class Emitter<Events extends Record<string, unknown>> {
  readonly #listeners = new Map<keyof Events, Set<Listener<never>>>();

  on<K extends keyof Events>(event: K, fn: Listener<Events[K]>): () => void {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(fn as Listener<never>);
    return () => set.delete(fn as Listener<never>);
  }

  once<K extends keyof Events>(event: K): Promise<Events[K]> {
    return new Promise((resolve) => {
      const off = this.on(event, (v) => {
        off();
        resolve(v);
      });
    });
  }

  /** Calls every listener; a listener's failure is reported as an `error` event, never thrown here. */
  emit<K extends keyof Events>(event: K, value: Events[K]): void {
    for (const fn of [...(this.#listeners.get(event) ?? [])]) {
      try {
        const r = (fn as Listener<Events[K]>)(value);
        if (r && typeof r.then === 'function') r.then(undefined, (err: unknown) => this.#fail(event, err));
      } catch (err) {
        this.#fail(event, err);
      }
    }
  }

  /** Calls the listeners one after the other, waiting for each: items are handled in order, before the cursor moves. */
  async emitInOrder<K extends keyof Events>(event: K, value: Events[K]): Promise<void> {
    for (const fn of [...(this.#listeners.get(event) ?? [])]) await (fn as Listener<Events[K]>)(value);
  }

  #fail(event: keyof Events, err: unknown): void {
    if (event === 'error') return;
    this.emit('error' as keyof Events, (err instanceof Error ? err : new Error(String(err))) as Events[keyof Events]);
  }
}
