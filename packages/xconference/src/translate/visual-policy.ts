/**
 * Which servers can take part in a conference: only those whose default (root) visual of screen 0 is
 * TrueColor. With a colormapped visual (PseudoColor, GrayScale, StaticColor, StaticGray) or DirectColor,
 * a pixel value means whatever that server's colormap says: the master's pixel values would show wrong
 * colours there, and colormap translation (per-server allocation with a pixel map) is not implemented.
 * Such a server is refused with this reason — never joined with silently wrong colours
 * (docs/XCONFERENCE.md, "Visuals and depths").
 */
import type { ServerSetup } from '../wire/setup.js';

const CLASS_NAMES = ['StaticGray', 'GrayScale', 'StaticColor', 'PseudoColor', 'TrueColor', 'DirectColor'] as const;
const TRUE_COLOR = 4;

/** The name of an X visual class (e.g. 4 → TrueColor). */
export function visualClassName(klass: number): string {
  return CLASS_NAMES[klass] ?? `class ${klass}`;
}

/** Why a server with this setup cannot take part, or undefined when it can. */
export function unsupportedVisual(setup: ServerSetup): string | undefined {
  const screen = setup.screens[0];
  if (screen === undefined) return 'the server has no screen';
  const root = screen.visuals.find((v) => v.id === screen.rootVisual);
  if (root === undefined) return `the root visual 0x${screen.rootVisual.toString(16)} is not among the screen's visuals`;
  if (root.klass === TRUE_COLOR) return undefined;
  return `its default visual is ${visualClassName(root.klass)} (depth ${screen.rootDepth}); only TrueColor servers can take part (colormap translation is not implemented)`;
}
