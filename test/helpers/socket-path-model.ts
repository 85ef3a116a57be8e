// A model of what a running fugue-server's socket path holds, and of what the
// server does about it (docs/operations.md, "Deleted sockets come back"):
//
// - the path holds the socket the server listens on now: ready;
// - the path is free, or holds a dead socket (one whose listener is gone):
//   the server binds a new socket there (the old one's listener closes): ready;
// - anything else (a file, a directory, a FIFO, a symlink, another live
//   server's socket): never touched; not ready until it goes.
//
// Pure: the test performs each event on the real file system and asks the
// model what the server must report once it has reacted.

/** What can sit at a path. */
export type Item =
  | { kind: 'ours'; gen: number } // a socket this server bound; live only while gen is current
  | { kind: 'foreign'; id: number; live: boolean } // another process's socket
  | { kind: 'file' | 'dir' | 'fifo' | 'symlink' };

/** Where the socket's directory points: the original directory, a symlink to it, or another directory. */
export type DirState = 'main' | 'symlink-main' | 'alt';

export class SocketPathModel {
  /** Generation of the socket the server listens on now. */
  gen = 0;
  /** What the socket path holds in each real directory. */
  at: Record<'main' | 'alt', Item | undefined> = { main: { kind: 'ours', gen: 0 }, alt: undefined };
  dir: DirState = 'main';
  /** Items moved away, by slot name. */
  stash = new Map<string, Item>();

  get realDir(): 'main' | 'alt' {
    return this.dir === 'alt' ? 'alt' : 'main';
  }

  /** What the socket path resolves to now. */
  get current(): Item | undefined {
    return this.at[this.realDir];
  }

  set current(item: Item | undefined) {
    this.at[this.realDir] = item;
  }

  isLive(item: Item | undefined): boolean {
    if (item === undefined) return false;
    if (item.kind === 'ours') return item.gen === this.gen;
    if (item.kind === 'foreign') return item.live;
    return false;
  }

  isSocket(item: Item | undefined): boolean {
    return item !== undefined && (item.kind === 'ours' || item.kind === 'foreign');
  }

  /** The server's reaction once its check has run; returns whether it must then report ready. */
  settle(): boolean {
    const item = this.current;
    if (item?.kind === 'ours' && item.gen === this.gen) return true;
    if (item === undefined || (this.isSocket(item) && !this.isLive(item))) {
      this.gen++; // a new socket; every older one of ours is now dead
      this.current = { kind: 'ours', gen: this.gen };
      return true;
    }
    return false;
  }
}
