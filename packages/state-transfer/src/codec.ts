/**
 * msgpack for chunk payloads and messages: @tandem/core's codec (plain msgpack, no record extension) —
 * one set of msgpackr settings for the whole repository, under the names this package uses.
 */
export { encodeValue as pack, decodeValue as unpack, decodeValues as unpackAll } from '@tandem/core/internal';
