/** What makes a non-focus participant the input focus of an application (patent: "predetermined triggers"). */
export type FocusTrigger =
  | { readonly kind: 'key'; readonly keysym: number; readonly modifiers: number; readonly label: string }
  | { readonly kind: 'button'; readonly button: number; readonly label: string }
  | { readonly kind: 'none'; readonly label: string };

const MODIFIERS: Record<string, number> = {
  shift: 1,
  lock: 2,
  ctrl: 4,
  control: 4,
  alt: 8,
  mod1: 8,
  mod2: 16,
  mod3: 32,
  mod4: 64,
  super: 64,
  mod5: 128,
};

/**
 * Parses a trigger: `none`, `button` / `button3` (any / a given button pressed on a non-focus participant),
 * or a key chord such as `ctrl+alt+f` (Latin-1 keys, F1..F12).
 */
export function parseFocusTrigger(spec: string): FocusTrigger {
  const s = spec.trim().toLowerCase();
  if (s === 'none') return { kind: 'none', label: 'none' };
  const button = /^button([1-5])?$/.exec(s);
  if (button) return { kind: 'button', button: button[1] ? Number(button[1]) : 0, label: s };
  const parts = s.split('+').filter(Boolean);
  const key = parts.pop();
  if (!key) throw new Error(`empty focus trigger "${spec}"`);
  let modifiers = 0;
  for (const p of parts) {
    const m = MODIFIERS[p];
    if (m === undefined) throw new Error(`unknown modifier "${p}" in focus trigger "${spec}"`);
    modifiers |= m;
  }
  let keysym: number;
  const fkey = /^f([1-9]|1[0-2])$/.exec(key);
  if (fkey) keysym = 0xffbe + Number(fkey[1]) - 1;
  else if (key.length === 1 && key.charCodeAt(0) >= 0x20 && key.charCodeAt(0) < 0x7f) keysym = key.charCodeAt(0);
  else throw new Error(`unsupported key "${key}" in focus trigger "${spec}"`);
  return { kind: 'key', keysym, modifiers, label: s };
}
