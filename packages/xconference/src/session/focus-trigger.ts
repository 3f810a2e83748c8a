import { FocusTriggerError } from '../errors.js';
import { EventCode, Opcode } from '../generated/xproto.js';
import { read16, read32, write16 } from '../wire/bytes.js';
import type { ServerLink } from './server-link.js';

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
 * or a key chord such as `ctrl+alt+f` (Latin-1 keys, F1..F12). Throws FocusTriggerError.
 */
export function parseFocusTrigger(spec: string): FocusTrigger {
  const s = spec.trim().toLowerCase();
  if (s === 'none') return { kind: 'none', label: 'none' };
  const button = /^button([1-5])?$/.exec(s);
  if (button) return { kind: 'button', button: button[1] ? Number(button[1]) : 0, label: s };
  const parts = s.split('+').filter(Boolean);
  const key = parts.pop();
  if (!key) throw new FocusTriggerError('empty', `empty focus trigger "${spec}"`);
  let modifiers = 0;
  for (const p of parts) {
    const m = MODIFIERS[p];
    if (m === undefined) throw new FocusTriggerError('unknown-modifier', `unknown modifier "${p}" in focus trigger "${spec}"`);
    modifiers |= m;
  }
  let keysym: number;
  const fkey = /^f([1-9]|1[0-2])$/.exec(key);
  if (fkey) keysym = 0xffbe + Number(fkey[1]) - 1;
  else if (key.length === 1 && key.charCodeAt(0) >= 0x20 && key.charCodeAt(0) < 0x7f) keysym = key.charCodeAt(0);
  else throw new FocusTriggerError('unsupported-key', `unsupported key "${key}" in focus trigger "${spec}"`);
  return { kind: 'key', keysym, modifiers, label: s };
}

/**
 * The proxy's own request at connection start, for a key trigger: GetKeyboardMapping of every keycode of
 * `link`'s server (mapped to the application's request `appSeq`), whose reply gives the keycode that
 * produces the trigger's keysym there (link.triggerKeycode; 0 while unknown or if none does).
 */
export function learnTriggerKeycode(link: ServerLink, t: FocusTrigger, appSeq: number, le: boolean): void {
  if (t.kind !== 'key') return;
  const first = link.setup.minKeycode;
  const count = link.setup.maxKeycode - first + 1;
  const req = Buffer.alloc(8);
  req[0] = Opcode.GetKeyboardMapping;
  write16(req, 2, 2, le);
  req[4] = first;
  req[5] = count;
  link.sendInternal(req, appSeq, (reply) => {
    const per = reply[1] ?? 0;
    if (per === 0) return;
    for (let k = 0; k < count; k++) {
      for (let j = 0; j < per; j++) {
        const off = 32 + 4 * (k * per + j);
        if (off + 4 > reply.length) return;
        if (read32(reply, off, le) === t.keysym) {
          link.triggerKeycode = first + k;
          return;
        }
      }
    }
  });
}

/**
 * True if event `msg` is the trigger `t` (from a participant whose trigger key is `keycode`). Lock and
 * NumLock (Mod2) do not count as modifiers.
 */
export function isFocusTrigger(t: FocusTrigger, keycode: number, msg: Buffer, le: boolean): boolean {
  const code = msg[0]! & 0x7f;
  if (t.kind === 'button') return code === EventCode.ButtonPress && (t.button === 0 || msg[1] === t.button);
  if (t.kind === 'key') {
    if (code !== EventCode.KeyPress || keycode === 0 || msg[1] !== keycode) return false;
    const state = read16(msg, 28, le);
    return (state & 0xff & ~2 & ~16) === t.modifiers;
  }
  return false;
}
