import { createServer, connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { Conference } from '../src/conference.js';
import { FocusTriggerError, isXconferenceError, JoinError, XCONFERENCE_ERROR_NAMES, XProtocolError } from '../src/errors.js';
import { parseFocusTrigger } from '../src/session/focus-trigger.js';
import { parseClientSetup } from '../src/wire/setup.js';

const caught = (fn: () => unknown): unknown => {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('did not throw');
};

describe('errors', () => {
  it('are flat classes whose static and instance names agree, each in the closed list', () => {
    for (const E of [XProtocolError, JoinError, FocusTriggerError]) {
      expect(XCONFERENCE_ERROR_NAMES).toContain(E.name);
      const e = new E('failed' as never, 'x');
      expect(e.name).toBe(E.name);
      expect(e).toBeInstanceOf(Error);
      expect(Object.getPrototypeOf(E.prototype)).toBe(Error.prototype);
    }
  });

  it('isXconferenceError recognises them by name and code, with or without a name, across copies', () => {
    const protocol = caught(() => parseClientSetup(Buffer.from('GET / HTTP/1.1\r\n')));
    expect(isXconferenceError(protocol)).toBe(true);
    expect(isXconferenceError(protocol, 'XProtocolError')).toBe(true);
    expect(isXconferenceError(protocol, 'JoinError')).toBe(false);
    // A copy from another instance of the package: same name and code, another class.
    expect(isXconferenceError({ name: 'JoinError', code: 'closed', message: 'm' }, 'JoinError')).toBe(true);
    expect(isXconferenceError(new Error('plain'))).toBe(false);
    expect(isXconferenceError({ name: 'TimeoutError', code: 'ERR_TIMEOUT' })).toBe(false);
    expect(isXconferenceError({ name: 'XProtocolError' })).toBe(false);
    expect(isXconferenceError(null)).toBe(false);
    expect(isXconferenceError('XProtocolError')).toBe(false);
  });

  it('parseFocusTrigger throws FocusTriggerError with a code', () => {
    expect(caught(() => parseFocusTrigger('+'))).toMatchObject({ name: 'FocusTriggerError', code: 'empty' });
    expect(caught(() => parseFocusTrigger('hyper+f'))).toMatchObject({ name: 'FocusTriggerError', code: 'unknown-modifier' });
    expect(caught(() => parseFocusTrigger('ctrl+Escape'))).toMatchObject({ name: 'FocusTriggerError', code: 'unsupported-key' });
  });

  it('Conference.addParticipant rejects with JoinError: duplicate, unreachable, closed', async () => {
    const conference = new Conference({
      participants: [{ name: 'master', connect: () => connect(1, '127.0.0.1') }],
      trigger: parseFocusTrigger('none'),
    });
    await expect(conference.addParticipant({ name: 'master', connect: () => connect(1, '127.0.0.1') })).rejects.toMatchObject({
      name: 'JoinError',
      code: 'duplicate',
    });
    const dead = createServer();
    await new Promise<void>((res) => dead.listen(0, '127.0.0.1', () => res()));
    const deadPort = (dead.address() as { port: number }).port;
    await new Promise((res) => dead.close(res));
    await expect(conference.addParticipant({ name: 'nobody', connect: () => connect(deadPort, '127.0.0.1') })).rejects.toMatchObject({
      name: 'JoinError',
      code: 'unreachable',
      message: expect.stringMatching(/^nobody: /),
    });
    conference.close('test over');
    await expect(conference.addParticipant({ name: 'late', connect: () => connect(deadPort, '127.0.0.1') })).rejects.toMatchObject({
      name: 'JoinError',
      code: 'closed',
    });
  });
});
