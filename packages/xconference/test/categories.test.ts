import { describe, expect, it } from 'vitest';
import {
  EVENT_CATEGORIES,
  EventCategory,
  REQUEST_CATEGORIES,
  RequestCategory,
  eventCategory,
  requestCategory,
} from '../src/wire/categories.js';
import { EVENTS, REQUESTS, XCB_PROTO_VERSION } from '../src/generated/xproto.js';

describe('request and event categories', () => {
  it('classifies every core request opcode 1..127 that xproto defines, and nothing else', () => {
    const defined = REQUESTS.map((r, op) => (r ? op : -1)).filter((op) => op >= 1 && op <= 127);
    expect(defined.length).toBeGreaterThanOrEqual(119);
    const missing = defined.filter((op) => REQUEST_CATEGORIES[op] === undefined);
    expect(missing).toEqual([]);
    const extra = Object.keys(REQUEST_CATEGORIES)
      .map(Number)
      .filter((op) => !REQUESTS[op]);
    expect(extra).toEqual([]);
  });

  it('classifies every core event code that xproto defines', () => {
    const codes = EVENTS.map((e, code) => (e ? code : -1)).filter((c) => c >= 0);
    expect(codes).toContain(2);
    expect(codes).toContain(35);
    expect(codes.filter((c) => EVENT_CATEGORIES[c] === undefined)).toEqual([]);
  });

  it('follows the patent for its examples', () => {
    expect(requestCategory(66)).toBe(RequestCategory.DrawOrChange); // PolySegment: draw a line
    expect(requestCategory(14)).toBe(RequestCategory.QueryDisplay); // GetGeometry: size of a window
    expect(requestCategory(49)).toBe(RequestCategory.QueryServer); // ListFonts: fonts available
    expect(requestCategory(41)).toBe(RequestCategory.InputDevices); // WarpPointer: pointer location
    expect(requestCategory(16)).toBe(RequestCategory.InitResourceIds); // InternAtom: create an atom
    expect(requestCategory(31)).toBe(RequestCategory.InputDevices); // GrabKeyboard: not frozen for all
    expect(eventCategory(2)).toBe(EventCategory.UserInteraction); // KeyPress
    expect(eventCategory(12)).toBe(EventCategory.Redraw); // Expose
    expect(eventCategory(19)).toBe(EventCategory.ResourceStateChange); // MapNotify
    expect(eventCategory(34)).toBe(EventCategory.ServerStateChange); // MappingNotify
  });

  it('treats any event with the send_event bit as coming from another application', () => {
    expect(eventCategory(0x80 | 2)).toBe(EventCategory.FromOtherApplication);
    expect(eventCategory(0x80 | 12)).toBe(EventCategory.FromOtherApplication);
    expect(eventCategory(33)).toBe(EventCategory.FromOtherApplication);
  });

  it('sends extension requests to the master only', () => {
    expect(requestCategory(140)).toBe(RequestCategory.QueryServer);
  });

  it('records the xcb-proto version the tables came from', () => {
    expect(XCB_PROTO_VERSION).toMatch(/^\d+\.\d+/);
  });
});
