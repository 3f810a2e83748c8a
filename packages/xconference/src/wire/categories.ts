/**
 * The patent's (US 5,887,170) request and event categories, and the category of every core request
 * (opcodes 1..127) and core event (codes 2..35). The rationale for each decision is in docs/XCONFERENCE.md.
 */

/** Request categories (FIG. 3 of the patent). */
export enum RequestCategory {
  /** Draw geometry or change the state of resources: sent to all servers; errors only from the master. */
  DrawOrChange = 'draw-or-change',
  /** Query the state of the display: sent to the input focus; replies and errors from it. */
  QueryDisplay = 'query-display',
  /** Query the state of the server (fonts, extensions…): sent to the master; replies from it. */
  QueryServer = 'query-server',
  /** Query or change input devices: sent to the input focus; replies from it. */
  InputDevices = 'input-devices',
  /** Initialise resource identifiers (InternAtom…): sent to all; replies and errors from the master. */
  InitResourceIds = 'init-resource-ids',
}

/** Event categories (FIG. 2 of the patent). */
export enum EventCategory {
  /** Key, button, motion, crossing, focus: only from the input focus, or an allowed focus-switch trigger. */
  UserInteraction = 'user-interaction',
  /** Expose, GraphicsExposure: from any participant. */
  Redraw = 'redraw',
  /** Sent by another application (SendEvent, send_event bit set; ClientMessage): only from the master. */
  FromOtherApplication = 'from-other-application',
  /** Change of server state (MappingNotify…): only from the master. */
  ServerStateChange = 'server-state-change',
  /** Change of the application's resources (MapNotify, ConfigureNotify…): only from the input focus. */
  ResourceStateChange = 'resource-state-change',
}

const D = RequestCategory.DrawOrChange;
const QD = RequestCategory.QueryDisplay;
const QS = RequestCategory.QueryServer;
const IN = RequestCategory.InputDevices;
const RI = RequestCategory.InitResourceIds;

/** Category of each core request, by opcode. */
export const REQUEST_CATEGORIES: Readonly<Record<number, RequestCategory>> = {
  1: D, // CreateWindow
  2: D, // ChangeWindowAttributes
  3: QD, // GetWindowAttributes
  4: D, // DestroyWindow
  5: D, // DestroySubwindows
  6: D, // ChangeSaveSet
  7: D, // ReparentWindow
  8: D, // MapWindow
  9: D, // MapSubwindows
  10: D, // UnmapWindow
  11: D, // UnmapSubwindows
  12: D, // ConfigureWindow
  13: D, // CirculateWindow
  14: QD, // GetGeometry
  15: QD, // QueryTree
  16: RI, // InternAtom
  17: QS, // GetAtomName
  18: D, // ChangeProperty
  19: D, // DeleteProperty
  20: QD, // GetProperty
  21: QD, // ListProperties
  22: IN, // SetSelectionOwner
  23: IN, // GetSelectionOwner
  24: IN, // ConvertSelection
  25: D, // SendEvent
  26: IN, // GrabPointer
  27: IN, // UngrabPointer
  28: IN, // GrabButton
  29: IN, // UngrabButton
  30: IN, // ChangeActivePointerGrab
  31: IN, // GrabKeyboard
  32: IN, // UngrabKeyboard
  33: IN, // GrabKey
  34: IN, // UngrabKey
  35: IN, // AllowEvents
  36: QS, // GrabServer
  37: QS, // UngrabServer
  38: IN, // QueryPointer
  39: IN, // GetMotionEvents
  40: QD, // TranslateCoordinates
  41: IN, // WarpPointer
  42: IN, // SetInputFocus
  43: IN, // GetInputFocus
  44: IN, // QueryKeymap
  45: D, // OpenFont
  46: D, // CloseFont
  47: QS, // QueryFont
  48: QS, // QueryTextExtents
  49: QS, // ListFonts
  50: QS, // ListFontsWithInfo
  51: D, // SetFontPath
  52: QS, // GetFontPath
  53: D, // CreatePixmap
  54: D, // FreePixmap
  55: D, // CreateGC
  56: D, // ChangeGC
  57: D, // CopyGC
  58: D, // SetDashes
  59: D, // SetClipRectangles
  60: D, // FreeGC
  61: D, // ClearArea
  62: D, // CopyArea
  63: D, // CopyPlane
  64: D, // PolyPoint
  65: D, // PolyLine
  66: D, // PolySegment
  67: D, // PolyRectangle
  68: D, // PolyArc
  69: D, // FillPoly
  70: D, // PolyFillRectangle
  71: D, // PolyFillArc
  72: D, // PutImage
  73: QD, // GetImage
  74: D, // PolyText8
  75: D, // PolyText16
  76: D, // ImageText8
  77: D, // ImageText16
  78: D, // CreateColormap
  79: D, // FreeColormap
  80: D, // CopyColormapAndFree
  81: D, // InstallColormap
  82: D, // UninstallColormap
  83: QD, // ListInstalledColormaps
  84: RI, // AllocColor
  85: RI, // AllocNamedColor
  86: RI, // AllocColorCells
  87: RI, // AllocColorPlanes
  88: D, // FreeColors
  89: D, // StoreColors
  90: D, // StoreNamedColor
  91: QS, // QueryColors
  92: QS, // LookupColor
  93: D, // CreateCursor
  94: D, // CreateGlyphCursor
  95: D, // FreeCursor
  96: D, // RecolorCursor
  97: QS, // QueryBestSize
  98: RI, // QueryExtension
  99: QS, // ListExtensions
  100: IN, // ChangeKeyboardMapping
  101: IN, // GetKeyboardMapping
  102: IN, // ChangeKeyboardControl
  103: IN, // GetKeyboardControl
  104: IN, // Bell
  105: IN, // ChangePointerControl
  106: IN, // GetPointerControl
  107: QS, // SetScreenSaver
  108: QS, // GetScreenSaver
  109: QS, // ChangeHosts
  110: QS, // ListHosts
  111: QS, // SetAccessControl
  112: QS, // SetCloseDownMode
  113: QS, // KillClient
  114: D, // RotateProperties
  115: QS, // ForceScreenSaver
  116: IN, // SetPointerMapping
  117: IN, // GetPointerMapping
  118: IN, // SetModifierMapping
  119: IN, // GetModifierMapping
  127: D, // NoOperation
};

const UI = EventCategory.UserInteraction;
const RD = EventCategory.Redraw;
const OA = EventCategory.FromOtherApplication;
const SS = EventCategory.ServerStateChange;
const RS = EventCategory.ResourceStateChange;

/** Category of each core event, by code (without the send_event bit). */
export const EVENT_CATEGORIES: Readonly<Record<number, EventCategory>> = {
  2: UI, // KeyPress
  3: UI, // KeyRelease
  4: UI, // ButtonPress
  5: UI, // ButtonRelease
  6: UI, // MotionNotify
  7: UI, // EnterNotify
  8: UI, // LeaveNotify
  9: UI, // FocusIn
  10: UI, // FocusOut
  11: UI, // KeymapNotify
  12: RD, // Expose
  13: RD, // GraphicsExposure
  14: RS, // NoExposure
  15: RS, // VisibilityNotify
  16: RS, // CreateNotify
  17: RS, // DestroyNotify
  18: RS, // UnmapNotify
  19: RS, // MapNotify
  20: RS, // MapRequest
  21: RS, // ReparentNotify
  22: RS, // ConfigureNotify
  23: RS, // ConfigureRequest
  24: RS, // GravityNotify
  25: RS, // ResizeRequest
  26: RS, // CirculateNotify
  27: RS, // CirculateRequest
  28: RS, // PropertyNotify
  29: RS, // SelectionClear
  30: RS, // SelectionRequest
  31: RS, // SelectionNotify
  32: RS, // ColormapNotify
  33: OA, // ClientMessage
  34: SS, // MappingNotify
  35: SS, // GenericEvent
};

/**
 * Category of a request. Extension requests (opcode >= 128) are QueryServer (master only) except the
 * ones the session rewrites itself (BIG-REQUESTS' BigReqEnable is InitResourceIds: see extensions/big-requests.ts).
 */
export function requestCategory(opcode: number): RequestCategory {
  return REQUEST_CATEGORIES[opcode] ?? RequestCategory.QueryServer;
}

/** Category of an event from its first byte: any event with the send_event bit set came from another application. */
export function eventCategory(firstByte: number): EventCategory {
  if (firstByte & 0x80) return EventCategory.FromOtherApplication;
  return EVENT_CATEGORIES[firstByte] ?? EventCategory.ServerStateChange;
}
