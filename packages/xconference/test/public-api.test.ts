import { describe, expect, it } from 'vitest';
import * as publicApi from '../src/index.js';
import * as internalApi from '../src/internal.js';

// The runtime names of the package's entries (types are checked by the compiler). A name added here is a
// promise to users; building blocks belong in '@tandem/xconference/internal'.
describe('package entries', () => {
  it('the main entry exports only what an application of the library needs', () => {
    expect(Object.keys(publicApi).sort()).toEqual(
      [
        'Conference',
        'EventCategory',
        'FocusTriggerError',
        'JoinError',
        'RequestCategory',
        'XCB_PROTO_VERSION',
        'XProtocolError',
        'encodeClientSetup',
        'encodeSetupFailed',
        'eventCategory',
        'findCookie',
        'isXconferenceError',
        'parseClientSetup',
        'parseFocusTrigger',
        'parseServerSetup',
        'readXauthority',
        'requestCategory',
        'serverSetupSize',
        'unsupportedVisual',
        'visualClassName',
      ].sort(),
    );
  });

  it('the internal entry exports what the repository tools drive directly', () => {
    expect(Object.keys(internalApi).sort()).toEqual(['ApplicationSession', 'RequestFramer', 'ServerMessageFramer', 'connectServer']);
  });
});
