import { describe, expect, it } from 'vitest';
import { parseDisplay, unixSocketPath, upstreamFor } from '../src/display.js';

describe('display names', () => {
  it('parses :N, N, unix:N, host:N and screen suffixes', () => {
    expect(parseDisplay(':95')).toMatchObject({ host: null, number: 95 });
    expect(parseDisplay('95')).toMatchObject({ host: null, number: 95 });
    expect(parseDisplay('unix:7.0')).toMatchObject({ host: null, number: 7 });
    expect(parseDisplay('127.0.0.1:3')).toMatchObject({ host: '127.0.0.1', number: 3 });
    expect(() => parseDisplay('nonsense')).toThrow(/bad display name/);
    expect(unixSocketPath(95)).toBe('/tmp/.X11-unix/X95');
  });
  it('builds an upstream without authorisation when XAUTHORITY has none', () => {
    const up = upstreamFor(':91', '/nonexistent/Xauthority');
    expect(up.name).toBe(':91');
    expect(up.auth).toBeUndefined();
  });
});
