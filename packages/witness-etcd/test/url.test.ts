import { describe, expect, it } from 'vitest';
import { isWitnessEtcdError, parseWitnessUrl, WitnessUrlError } from '../src/index.js';

describe('parseWitnessUrl', () => {
  it('reads endpoints and the prefix', () => {
    expect(parseWitnessUrl('etcd://127.0.0.1:2379/tandem/kv-1')).toEqual({ endpoints: ['127.0.0.1:2379'], prefix: '/tandem/kv-1' });
    expect(parseWitnessUrl('etcd://a:1,b,[::1]:3/p/')).toEqual({ endpoints: ['a:1', 'b:2379', '[::1]:3'], prefix: '/p' });
  });

  it('takes TLS file paths with etcds://', () => {
    expect(parseWitnessUrl('etcds://h:2379/p?ca=/etc/ca.pem&cert=/c.pem&key=/k.pem')).toEqual({
      endpoints: ['h:2379'],
      prefix: '/p',
      tls: { ca: '/etc/ca.pem', cert: '/c.pem', key: '/k.pem' },
    });
    expect(parseWitnessUrl('etcds://h/p').tls).toEqual({});
  });

  it.each([
    ['http://h:2379/p', 'not an etcd'],
    ['etcd:///p', 'no host'],
    ['etcd://h:2379', 'no key prefix'],
    ['etcd://h:2379/', 'no key prefix'],
    ['etcd://h:99999/p', 'bad port'],
    ['etcd://h:x/p', 'bad host:port'],
    ['etcd://a,,b/p', 'bad host:port'],
    ['etcd://h/a//b', 'empty path segment'],
    ['etcd://h/p?ca=/x', 'need etcds'],
    ['etcds://h/p?cert=/c', 'cert and key go together'],
    ['etcds://h/p?pass=1', 'unknown parameter'],
  ])('refuses %s with a WitnessUrlError', (url, problem) => {
    let err: unknown;
    try {
      parseWitnessUrl(url);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(WitnessUrlError);
    expect(isWitnessEtcdError(err, 'WitnessUrlError')).toBe(true);
    expect((err as Error).message).toContain(problem);
  });
});
