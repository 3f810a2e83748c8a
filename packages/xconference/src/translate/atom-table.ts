import type { IdMap } from './id-map.js';

/** What the atom table needs to know of a server connection. */
export interface AtomServer {
  /** Index of the server in its session (0 = the master). */
  readonly index: number;
  readonly isMaster: boolean;
  readonly ids: IdMap;
}

/**
 * One application's atoms by name, in the application's numbering (the master's) and in each server's.
 * InternAtom goes to every server: the master's answer is the application's atom, every other server's
 * answer fills that server's IdMap, so the same name maps to the same atom on each display.
 */
export class AtomTable {
  private readonly appByName = new Map<string, number>();
  private readonly serverByName: Array<Map<string, number>> = [];

  /** The atoms the application has interned, by name (the master's numbers). */
  get appAtoms(): ReadonlyMap<string, number> {
    return this.appByName;
  }

  /** Starts the table of the server at `index` (at setup, or when a participant joins). */
  addServer(index: number): void {
    this.serverByName[index] = new Map();
  }

  /** `server` answered InternAtom(`name`) with `atom` (0: no such atom); `servers` are the session's. */
  learn(server: AtomServer, name: string, atom: number, servers: readonly AtomServer[]): void {
    if (atom === 0) return;
    if (!server.isMaster) {
      this.learnOnServer(server, name, atom);
      return;
    }
    this.appByName.set(name, atom);
    for (const s of servers) {
      const own = this.serverByName[s.index]!.get(name);
      if (own !== undefined) s.ids.learnAtom(atom, own);
    }
  }

  /** `name` is `atom` on `server` (not the master): its IdMap maps the application's atom of that name to it. */
  learnOnServer(server: AtomServer, name: string, atom: number): void {
    this.serverByName[server.index]!.set(name, atom);
    const a = this.appByName.get(name);
    if (a !== undefined) server.ids.learnAtom(a, atom);
  }
}
