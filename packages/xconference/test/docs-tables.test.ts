import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { EVENT_CATEGORIES, EventCategory, REQUEST_CATEGORIES, RequestCategory } from '../src/wire/categories.js';
import { EVENTS, REQUESTS } from '../src/generated/xproto.js';

// docs/XCONFERENCE.md lists every request and event under its category; the lists must match the code.
const doc = readFileSync(resolve(dirname(fileURLToPath(import.meta.url)), '../../../docs/XCONFERENCE.md'), 'utf8');

/** Names in the paragraph that starts with `heading` (up to the next blank line). */
function listAfter(heading: string): Set<string> {
  const start = doc.indexOf(heading);
  if (start < 0) throw new Error(`docs/XCONFERENCE.md has no "${heading}"`);
  const para = doc.slice(start + heading.length, doc.indexOf('\n\n', start));
  return new Set(para.match(/\b[A-Z][A-Za-z0-9]+\b/g) ?? []);
}

describe('docs/XCONFERENCE.md category lists', () => {
  it('list every core request under the category the code gives it', () => {
    const headings: Record<RequestCategory, string> = {
      [RequestCategory.DrawOrChange]: 'Draw or change resources — sent to all, errors from the master:',
      [RequestCategory.QueryDisplay]: 'Query display state — sent to the input focus, replies from it:',
      [RequestCategory.QueryServer]: 'Query server state — sent to the master, replies from it:',
      [RequestCategory.InputDevices]: 'Query or change input devices — sent to the input focus, replies from it:',
      [RequestCategory.InitResourceIds]: 'Initialise resource identifiers — sent to all, replies and errors from the master:',
    };
    const wrong: string[] = [];
    for (const [op, cat] of Object.entries(REQUEST_CATEGORIES)) {
      const name = REQUESTS[Number(op)]!.name;
      if (!listAfter(headings[cat]).has(name)) wrong.push(`${name} (${cat})`);
    }
    expect(wrong).toEqual([]);
  });

  it('list every core event under the category the code gives it', () => {
    const headings: Record<EventCategory, string> = {
      [EventCategory.UserInteraction]: '* User interaction:',
      [EventCategory.Redraw]: '* Redraw:',
      [EventCategory.FromOtherApplication]: '* From another application:',
      [EventCategory.ServerStateChange]: '* Server state change:',
      [EventCategory.ResourceStateChange]: '* Application resource state change:',
    };
    const wrong: string[] = [];
    for (const [code, cat] of Object.entries(EVENT_CATEGORIES)) {
      let name = EVENTS[Number(code)]!.name;
      if (name === 'GeGeneric') name = 'GenericEvent';
      if (!listAfter(headings[cat]).has(name)) wrong.push(`${name} (${cat})`);
    }
    expect(wrong).toEqual([]);
  });
});
