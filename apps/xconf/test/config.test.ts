// Configuration validation, access rules and ctl argument parsing: unit tests, no X server needed.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AccessPolicy, tokenMatches } from '../src/access.js';
import { ConfigError, configFromFlags, loadConfig, parseConfig } from '../src/config.js';
import { parseCtlArgs } from '../src/ctl-args.js';
import { CtlError, parseCtlRequest } from '../src/ctl-protocol.js';

const good = {
  participants: [
    { name: 'alice', display: ':91', token: 'alice-secret', may: ['start', 'join', 'launch'] },
    { name: 'bob', display: 'otherhost:3', token: 'bob-secret-1', may: ['join'] },
    { name: 'carol', display: ':93' },
  ],
  conferences: [{ name: 'helpdesk', display: ':95', master: 'alice', participants: ['bob'] }],
};

function issues(value: unknown): string[] {
  try {
    parseConfig(value);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).name).toBe('ConfigError');
    return (err as ConfigError).issues.map((i) => `${i.path}: ${i.message}`);
  }
  throw new Error('the configuration was accepted');
}

describe('configuration', () => {
  it('accepts a valid file and fills in defaults', () => {
    const c = parseConfig(good);
    expect(c.participants[2]!.may).toEqual(['join']);
    expect(c.conferences[0]).toMatchObject({
      focusTrigger: 'ctrl+alt+f',
      requireCookie: true,
      autostart: true,
      tcp: false,
      participants: ['bob'],
    });
    expect(c.control.enabled).toBe(true);
  });

  it('names the bad field of each error', () => {
    const bad = {
      participants: [
        { name: 'alice', display: 'nonsense', may: ['start', 'fly'] },
        { name: 'alice', display: ':92', token: 'short' },
      ],
      conferences: [
        { name: 'c1', display: 'host:5', master: 'nobody', focusTrigger: 'hyper+q', participants: ['ghost'] },
        { name: 'c1', display: ':96', master: 'alice', colour: 'blue' },
      ],
    };
    const found = issues(bad);
    const has = (path: string, re: RegExp) =>
      expect(
        found.some((l) => l.startsWith(`${path}: `) && re.test(l)),
        `${path} ${re} in\n${found.join('\n')}`,
      ).toBe(true);
    has('participants[0].display', /not an X display name/);
    has('participants[0].may[1]', /start|join|launch/);
    has('participants[1].token', /at least 8/);
    has('conferences[0].display', /local display/);
    has('conferences[0].focusTrigger', /not a focus trigger/);
    has('conferences[1]', /unknown field "colour"/);
  });

  it('checks cross references: duplicates, unknown participants, masters that may not start', () => {
    const found = issues({
      participants: [
        { name: 'alice', display: ':91', token: 'same-token' },
        { name: 'alice', display: ':92', token: 'same-token' },
      ],
      conferences: [
        { name: 'c', display: ':95', master: 'alice', participants: ['ghost', 'alice'], allow: ['nobody'] },
        { name: 'c', display: ':95', master: 'nobody' },
      ],
    });
    expect(found).toEqual(
      expect.arrayContaining([
        'participants[1].name: duplicate participant name "alice"',
        'participants[1].token: same token as participants[0] (tokens identify participants)',
        'conferences[0].master: participant "alice" may not start a conference (add "start" to its "may")',
        'conferences[0].participants[0]: no participant named "ghost"',
        'conferences[0].participants[1]: "alice" is already the master',
        'conferences[0].allow[0]: no participant named "nobody"',
        'conferences[1].name: duplicate conference name "c"',
        'conferences[1].display: display :95 is also used by conference "c"',
        'conferences[1].master: no participant named "nobody"',
      ]),
    );
  });

  it('refuses a participant on one of the daemon’s own displays (it would connect to itself)', () => {
    const found = issues({
      participants: [
        { name: 'alice', display: ':95', may: ['start'] },
        { name: 'bob', display: 'localhost:33' },
        { name: 'carol', display: 'elsewhere:95' },
      ],
      conferences: [{ name: 'c', display: ':95', master: 'alice' }],
      runtimeDisplays: { from: 30, to: 39 },
    });
    expect(found).toEqual([
      'participants[0].display: :95 is conference "c"\'s own display (the daemon would connect to itself)',
      'participants[1].display: :33 is inside runtimeDisplays (the daemon would connect to itself)',
    ]);
  });

  it('reports unreadable files and bad JSON with the file name', () => {
    const dir = mkdtempSync(join(tmpdir(), 'xconf-config-'));
    try {
      const f = join(dir, 'bad.json');
      writeFileSync(f, '{ "participants": [ ');
      expect(() => loadConfig(f)).toThrow(/bad\.json: not JSON/);
      expect(() => loadConfig(join(dir, 'missing.json'))).toThrow(/missing\.json: cannot read/);
      writeFileSync(f, JSON.stringify(good));
      expect(loadConfig(f).conferences[0]!.name).toBe('helpdesk');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('turns the command line into one conference of display-named participants, with a cookie unless told otherwise', () => {
    const c = configFromFlags({ display: ':95', master: ':91', participants: [':92', '127.0.0.1:3'], trigger: 'button' });
    expect(c.participants.map((p) => p.name)).toEqual([':91', ':92', '127.0.0.1:3']);
    expect(c.conferences[0]).toMatchObject({
      name: 'default',
      master: ':91',
      participants: [':92', '127.0.0.1:3'],
      focusTrigger: 'button',
      requireCookie: true,
    });
    expect(
      configFromFlags({ display: ':95', master: ':91', participants: [], trigger: 'none', requireCookie: false }).conferences[0]!
        .requireCookie,
    ).toBe(false);
    expect(() => configFromFlags({ display: ':95', master: ':91', participants: [':91'], trigger: 'none' })).toThrow(
      /duplicate participant name ":91"/,
    );
  });
});

describe('access policy', () => {
  const policy = new AccessPolicy(parseConfig(good));
  const refusal = (f: () => void): string => {
    try {
      f();
    } catch (err) {
      expect(err).toBeInstanceOf(CtlError);
      return `${(err as CtlError).code}: ${(err as Error).message}`;
    }
    return 'allowed';
  };

  it('compares tokens exactly', () => {
    expect(tokenMatches('alice-secret', 'alice-secret')).toBe(true);
    expect(tokenMatches('alice-secreT', 'alice-secret')).toBe(false);
    expect(tokenMatches(undefined, 'alice-secret')).toBe(false);
  });

  it('finds participants by name or display, refuses unlisted ones', () => {
    expect(policy.participant('bob').display).toBe('otherhost:3');
    expect(policy.participant(':91').name).toBe('alice');
    expect(refusal(() => policy.participant(':99'))).toMatch(/^unauthorised: ":99" is not on the participants' allow-list/);
    expect(policy.byToken('bob-secret-1')?.name).toBe('bob');
    expect(policy.byToken('nope')).toBeUndefined();
  });

  it('checks permissions and tokens', () => {
    const alice = policy.participant('alice');
    const bob = policy.participant('bob');
    const carol = policy.participant('carol');
    expect(refusal(() => policy.require(alice, 'start', 'alice-secret'))).toBe('allowed');
    expect(refusal(() => policy.require(alice, 'start', 'bob-secret-1'))).toBe('unauthorised: wrong token for participant "alice"');
    expect(refusal(() => policy.require(alice, 'start', undefined))).toBe('unauthorised: a token is required for participant "alice"');
    expect(refusal(() => policy.require(bob, 'launch', 'bob-secret-1'))).toBe('unauthorised: participant "bob" may not launch');
    // carol has no token: her allow-list entry is enough
    expect(refusal(() => policy.requireJoin(carol, undefined, 'c', undefined))).toBe('allowed');
    expect(refusal(() => policy.requireJoin(carol, ['bob'], 'c', undefined))).toBe(
      'unauthorised: participant "carol" is not allowed to join conference "c"',
    );
    // control actions: the master's token, or the participant's own
    expect(refusal(() => policy.requireControl(alice, bob, 'bob-secret-1', 'x'))).toBe('allowed');
    expect(refusal(() => policy.requireControl(alice, bob, 'alice-secret', 'x'))).toBe('allowed');
    expect(refusal(() => policy.requireControl(alice, undefined, 'bob-secret-1', 'stop'))).toMatch(/^unauthorised: wrong token to stop/);
  });
});

describe('ctl requests', () => {
  it('parses command lines into requests', () => {
    expect(parseCtlArgs(['list'], {}).request).toEqual({ cmd: 'list' });
    expect(parseCtlArgs(['drop', 'c', '2', '--token', 't'], {}).request).toEqual({ cmd: 'drop', conference: 'c', app: 2, token: 't' });
    expect(parseCtlArgs(['--socket', '/s', 'start', 'c', '--master', 'alice', '--token', 't', '--display', ':97'], {})).toEqual({
      socket: '/s',
      json: false,
      request: { cmd: 'start', conference: 'c', master: 'alice', token: 't', display: ':97' },
    });
    expect(parseCtlArgs(['join', 'c', ':92'], { TANDEM_XCONF_TOKEN: 'from-env' }).request).toEqual({
      cmd: 'join',
      conference: 'c',
      participant: ':92',
      token: 'from-env',
    });
    expect(parseCtlArgs(['focus', 'c', 'bob', '--app', '3', '--json'], {})).toMatchObject({
      json: true,
      request: { cmd: 'focus', app: 3 },
    });
    expect(parseCtlArgs(['launch', 'c', '--token', 't', '--', 'xlogo', '--geometry', '10x10'], {}).request).toEqual({
      cmd: 'launch',
      conference: 'c',
      token: 't',
      argv: ['xlogo', '--geometry', '10x10'],
    });
  });

  it('rejects bad command lines with a reason', () => {
    expect(() => parseCtlArgs(['launch', 'c'], {})).toThrow(/needs -- and the command/);
    expect(() => parseCtlArgs(['start', 'c'], {})).toThrow(/--master/);
    expect(() => parseCtlArgs(['join', 'c'], {})).toThrow(/a conference name and a participant/);
    expect(() => parseCtlArgs(['focus', 'c', 'bob', '--app', 'x'], {})).toThrow(/application id/);
    expect(() => parseCtlArgs(['stop', 'c', '--master', 'x'], {})).toThrow(/does not take --master/);
    expect(() => parseCtlArgs(['dance'], {})).toThrow(/unknown command "dance"/);
    expect(() => parseCtlArgs(['drop', 'c', 'x'], {})).toThrow(/application id/);
  });

  it('validates request lines and names the bad field', () => {
    expect(parseCtlRequest('{"cmd":"leave","conference":"c","participant":"bob"}')).toEqual({
      cmd: 'leave',
      conference: 'c',
      participant: 'bob',
    });
    const bad = (line: string): string => {
      try {
        parseCtlRequest(line);
      } catch (err) {
        expect((err as CtlError).code).toBe('bad-request');
        return (err as Error).message;
      }
      return 'accepted';
    };
    expect(bad('not json')).toMatch(/^not JSON/);
    expect(bad('{"cmd":"explode"}')).toMatch(/cmd/);
    expect(bad('{"cmd":"join","conference":"c"}')).toMatch(/participant/);
    expect(bad('{"cmd":"launch","conference":"c","argv":[]}')).toMatch(/argv/);
    expect(bad('{"cmd":"list","extra":1}')).toMatch(/extra/);
  });
});
