// The kinds of `BERTH_` variable: what `CONFIG_VARIABLES` (config-variables.ts) says of each.

/** A default that depends on other variables or on the machine, in the words the docs use. */
export interface DerivedDefault {
  readonly shown: string
}

interface Described {
  /** What the variable means, in one line (docs/configuration.md says more). */
  readonly meaning: string
  /** Read by the client commands (`berth upload`, `ls`, …) rather than the server. */
  readonly client?: true
}

/** An integer from `min` to `max` (decimal digits only). */
export interface IntVariable extends Described {
  readonly kind: 'int'
  readonly default: number
  readonly min: number
  readonly max: number
  /** A size in bytes: the docs add the size in KiB, MiB or GiB. */
  readonly unit?: 'bytes'
}

/** A decimal number from `min` to `max`; the default may come from the machine. */
export interface NumberVariable extends Described {
  readonly kind: 'number'
  readonly default: number | DerivedDefault
  readonly min: number
  readonly max: number
}

/** `true`/`1`/`yes` or `false`/`0`/`no`, any case. */
export interface BoolVariable extends Described {
  readonly kind: 'bool'
  readonly default: boolean
}

/** One of `values`. */
export interface ChoiceVariable extends Described {
  readonly kind: 'choice'
  readonly values: readonly string[]
  readonly default: string
}

/** Text checked by its own reader (URLs, keys, paths); `undefined` default: unset. */
export interface TextVariable extends Described {
  readonly kind: 'text'
  readonly default: string | DerivedDefault | undefined
  /** What is accepted, in the words the docs use. */
  readonly accepts: string
}

export type VariableSpec =
  | IntVariable
  | NumberVariable
  | BoolVariable
  | ChoiceVariable
  | TextVariable
