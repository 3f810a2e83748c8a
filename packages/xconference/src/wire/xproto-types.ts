/** Shapes of the tables generated from xcb-proto (src/generated/xproto.ts, written by tools/xproto-gen). */

/** Field types a multi-server proxy translates: resource ids, atoms and visual ids. */
export type ResourceKind =
  | 'WINDOW'
  | 'PIXMAP'
  | 'CURSOR'
  | 'FONT'
  | 'GCONTEXT'
  | 'COLORMAP'
  | 'ATOM'
  | 'DRAWABLE'
  | 'FONTABLE'
  | 'VISUALID';

/** A 4-byte field at a fixed byte offset from the start of the message. */
export interface ResourceField {
  readonly name: string;
  readonly offset: number;
  readonly kind: ResourceKind;
}

/** A list of 4-byte ids; its element count is in a length field, or it runs to the end (null). */
export interface ResourceList {
  readonly name: string;
  readonly offset: number;
  readonly kind: ResourceKind;
  readonly length: { readonly offset: number; readonly size: number } | null;
}

/** A value-mask + value-list (CreateWindow, ChangeGC…): one 4-byte value per set bit, in bit order. */
export interface ValueListSpec {
  readonly maskOffset: number;
  readonly maskSize: number;
  readonly listOffset: number;
  readonly bits: ReadonlyArray<{ readonly bit: number; readonly name: string; readonly kind: ResourceKind | null }>;
}

export interface RequestSpec {
  readonly opcode: number;
  readonly name: string;
  readonly hasReply: boolean;
  readonly resources: readonly ResourceField[];
  readonly lists: readonly ResourceList[];
  readonly valueList: ValueListSpec | null;
  readonly reply: { readonly resources: readonly ResourceField[]; readonly lists: readonly ResourceList[] } | null;
}

export interface EventSpec {
  readonly code: number;
  readonly name: string;
  readonly hasSequence: boolean;
  readonly generic: boolean;
  readonly resources: readonly ResourceField[];
}

export interface ErrorSpec {
  readonly code: number;
  readonly name: string;
}
