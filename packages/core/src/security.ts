/**
 * A replica's security settings (docs/SECURITY.md): who may connect as a peer, which clients may call,
 * and the safe default — without a cluster key a replica listens on loopback only.
 */
import { KeyError, KeyRing } from './auth.js';
import { ConfigError } from './errors.js';

/**
 * A replica's security settings: cluster keys, client keys and whether clients must authenticate, non-loopback without keys, handshake
 * timeout.
 */
export interface ReplicaSecurity {
  /**
   * Cluster keys (≥ 32 bytes each), shared by the two replicas and nobody else. With them, every
   * replica-to-replica connection (peer, state transfer) must pass a mutual HMAC challenge–response, and
   * the state information clients forward carries the primary's MAC, which the backup verifies. The first
   * key signs; every key is accepted (rotation). Without: peers are not authenticated (loopback only).
   */
  clusterKeys?: readonly Uint8Array[];
  /** Listen on a non-loopback address without a cluster key (peers and forwards unauthenticated). */
  insecure?: boolean;
  /** Client keys by key id; with `requireClientAuth`, a client must prove one before it may call. */
  clientKeys?: ReadonlyMap<string, Uint8Array> | Readonly<Record<string, Uint8Array>>;
  /** Refuse clients that do not authenticate with a client key (default false). */
  requireClientAuth?: boolean;
  /** An accepted connection that has not completed its hello (and handshake) within this many ms is
   * closed. Default 10 000. */
  handshakeTimeoutMs?: number;
}

/** A client's key for replicas that require client authentication. */
export interface ClientCredentials {
  /** Which of the replicas' client keys this is. */
  keyId: string;
  /** ≥ 32 bytes. */
  key: Uint8Array;
}

/** ReplicaSecurity checked and derived into key rings. */
export interface ResolvedSecurity {
  /** Handshake proofs between peers (undefined: no cluster key). */
  readonly peerRing: KeyRing | undefined;
  /** State-information MACs (undefined: no cluster key). */
  readonly macRing: KeyRing | undefined;
  readonly clientRings: ReadonlyMap<string, KeyRing>;
  readonly requireClientAuth: boolean;
  readonly insecure: boolean;
  readonly handshakeTimeoutMs: number;
}

/** Default deadline for an authentication handshake: 10 s. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

/** Check ReplicaSecurity and derive its key rings; throws ConfigError listing every problem. */
export function resolveSecurity(s: ReplicaSecurity = {}): ResolvedSecurity {
  const issues: { path: string; message: string }[] = [];
  let peerRing: KeyRing | undefined;
  let macRing: KeyRing | undefined;
  const clientRings = new Map<string, KeyRing>();
  const keyed = (path: string, f: () => void): void => {
    try {
      f();
    } catch (err) {
      if (!(err instanceof KeyError)) throw err;
      issues.push({ path, message: err.message });
    }
  };
  if (s.clusterKeys !== undefined && s.clusterKeys.length > 0) {
    keyed('security.clusterKeys', () => {
      peerRing = KeyRing.derive(s.clusterKeys!, 'peer-auth');
      macRing = KeyRing.derive(s.clusterKeys!, 'state-mac');
    });
  }
  const entries = s.clientKeys instanceof Map ? [...s.clientKeys.entries()] : Object.entries(s.clientKeys ?? {});
  for (const [id, key] of entries) {
    if (id.length === 0 || id.length > 256)
      issues.push({ path: 'security.clientKeys', message: `key id "${id}" must have 1–256 characters` });
    else keyed(`security.clientKeys.${id}`, () => clientRings.set(id, KeyRing.derive([key], 'peer-auth')));
  }
  const requireClientAuth = s.requireClientAuth === true;
  if (requireClientAuth && entries.length === 0)
    issues.push({ path: 'security.requireClientAuth', message: 'needs at least one client key (security.clientKeys)' });
  const handshakeTimeoutMs = s.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
  if (!Number.isFinite(handshakeTimeoutMs) || handshakeTimeoutMs <= 0)
    issues.push({ path: 'security.handshakeTimeoutMs', message: 'must be a positive number of ms' });
  if (issues.length > 0) throw new ConfigError(issues);
  return { peerRing, macRing, clientRings, requireClientAuth, insecure: s.insecure === true, handshakeTimeoutMs };
}

/** A replica without a cluster key was asked to listen beyond loopback without `insecure`. */
export class InsecureListenError extends Error {
  static override readonly name = 'InsecureListenError';
  override readonly name = 'InsecureListenError';
  readonly address: string;
  constructor(address: string) {
    super(
      `refusing to listen on ${address} without a cluster key: peers could not be authenticated and any host that reaches it could take the pair down. ` +
        'Give the replicas a cluster key (tandem-kv keygen --out FILE; --cluster-key-file FILE), listen on 127.0.0.1, or accept the risk explicitly (--insecure).',
    );
    this.address = address;
  }
}

/**
 * True when `address` can only be reached from this host: a loopback IP (127.0.0.0/8, ::1), `localhost`,
 * or an in-process scheme (mem://). Wildcards (0.0.0.0, ::) and every other host are not.
 */
export function isLoopbackAddress(address: string): boolean {
  let url: URL;
  try {
    url = new URL(address);
  } catch {
    return false;
  }
  const scheme = url.protocol.replace(/:$/, '');
  if (scheme === 'mem' || scheme === 'memory' || scheme === 'sim') return true;
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || host === '::1' || host === '0:0:0:0:0:0:0:1') return true;
  const m = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  return m?.slice(1).every((o) => Number(o) <= 255) ?? false;
}
