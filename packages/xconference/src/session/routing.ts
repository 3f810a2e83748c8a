/**
 * Who answers a request and whose events reach the application, by category and role (US 5,887,170
 * FIG. 2 and 3; the rationale of each rule is in docs/XCONFERENCE.md). Which servers a request is sent
 * to follows from the same categories, in ApplicationSession.handleRequest.
 */
import { EventCategory, RequestCategory } from '../wire/categories.js';

/** True if the input focus answers a request of `category` (display and input-device queries); else the master does. */
export function answeredByFocus(category: RequestCategory): boolean {
  return category === RequestCategory.QueryDisplay || category === RequestCategory.InputDevices;
}

/**
 * True if an event of `category` from a server that is (or is not) the input focus and the master reaches
 * the application. (A focus-switch trigger from another participant is decided before: see focus-trigger.ts.)
 */
export function eventPasses(category: EventCategory, fromFocus: boolean, fromMaster: boolean): boolean {
  switch (category) {
    case EventCategory.UserInteraction:
    case EventCategory.ResourceStateChange:
      return fromFocus;
    case EventCategory.Redraw:
      return true;
    case EventCategory.FromOtherApplication:
    case EventCategory.ServerStateChange:
      return fromMaster;
  }
}
