/**
 * A sequential specification for the linearizability checker: the state an object starts in, and whether an
 * operation with its observed output is legal in a given state (and the state after it).
 */
export interface Model<State, Input> {
  /** The state the object starts in. */
  init(): State;
  /** `ok: false` when the observed output of `input` cannot happen in `state`. */
  step(state: State, input: Input): { ok: boolean; state: State };
  /** A string equal for equal states (memoisation key). */
  hash(state: State): string;
  /** Human-readable state for diagnostics. */
  describe?(state: State): string;
  /** Human-readable input for diagnostics. */
  describeInput?(input: Input): string;
}

/** One operation of a concurrent history. `return` undefined = the caller never learned the outcome. */
export interface Operation<Input> {
  /** Index in the original history (for diagnostics). */
  readonly index: number;
  readonly client: string;
  readonly input: Input;
  readonly call: number;
  readonly return?: number | undefined;
}
