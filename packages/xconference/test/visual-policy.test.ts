import { describe, expect, it } from 'vitest';
import { unsupportedVisual, visualClassName } from '../src/translate/visual-policy.js';
import { parseServerSetup } from '../src/wire/setup.js';
import { encodeServerSetup, screen, TRUECOLOR24 } from './helpers/setup-builder.js';

const setupWith = (klass: number, depth: number) =>
  parseServerSetup(
    encodeServerSetup({
      le: true,
      base: 0x400000,
      mask: 0x1fffff,
      screen: { root: 0x50d, colormap: 0x20, rootVisual: 0x21, depth, visuals: [{ id: 0x21, depth, klass, red: 0, green: 0, blue: 0 }] },
    }),
    true,
  );

describe('which servers can take part (the default visual)', () => {
  it('accepts a TrueColor default visual', () => {
    const s = parseServerSetup(encodeServerSetup({ le: true, base: 0x400000, mask: 0x1fffff, screen: screen(0x50d) }), true);
    expect(unsupportedVisual(s)).toBeUndefined();
    expect(TRUECOLOR24.klass).toBe(4);
  });

  it.each([
    [0, 1, 'StaticGray'],
    [1, 8, 'GrayScale'],
    [2, 8, 'StaticColor'],
    [3, 8, 'PseudoColor'],
    [5, 24, 'DirectColor'],
  ])('refuses class %i (depth %i) by name: %s', (klass, depth, name) => {
    expect(visualClassName(klass)).toBe(name);
    expect(unsupportedVisual(setupWith(klass, depth))).toBe(
      `its default visual is ${name} (depth ${depth}); only TrueColor servers can take part (colormap translation is not implemented)`,
    );
  });

  it('refuses a setup whose root visual is not listed', () => {
    const s = parseServerSetup(
      encodeServerSetup({ le: true, base: 0x400000, mask: 0x1fffff, screen: { ...screen(0x50d), rootVisual: 0x99 } }),
      true,
    );
    expect(unsupportedVisual(s)).toMatch(/root visual 0x99 is not among/);
  });
});
