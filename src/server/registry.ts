// The set of live connections, keyed by client id. Ids come from a counter that
// is never reset or reused for the server's lifetime (Number is exact to 2^53).

export class ClientRegistry<T> {
  #clients = new Map<number, T>();
  #nextId = 1;

  /** A fresh id, never handed out before by this registry. */
  nextId(): number {
    return this.#nextId++;
  }

  add(id: number, client: T): void {
    if (this.#clients.has(id)) throw new Error(`client id ${id} is already registered`);
    this.#clients.set(id, client);
  }

  /** Returns false when the id was not registered (so callers can detect double cleanup). */
  remove(id: number): boolean {
    return this.#clients.delete(id);
  }

  get(id: number): T | undefined {
    return this.#clients.get(id);
  }

  get size(): number {
    return this.#clients.size;
  }

  values(): IterableIterator<T> {
    return this.#clients.values();
  }
}
