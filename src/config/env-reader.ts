import {
  type ChoiceVariable,
  CONFIG_VARIABLES,
  type DerivedDefault,
  type NumberVariable,
  type VariableName,
  type VariableOfKind,
  type VariableSpec,
} from './config-variables.js'

/** Environment variables, as the process received them. */
export type Env = Readonly<Record<string, string | undefined>>

/** The AWS SDK's own credential variables, read beside berth's for an S3 store. */
type AwsVariable = 'AWS_ACCESS_KEY_ID' | 'AWS_SECRET_ACCESS_KEY' | 'AWS_SESSION_TOKEN'

/** Variables of a kind whose default is a value, not derived from other variables or the host. */
type WithValueDefault<K extends VariableSpec['kind']> = {
  [N in VariableOfKind<K>]: (typeof CONFIG_VARIABLES)[N]['default'] extends
    | DerivedDefault
    | undefined
    ? never
    : N
}[VariableOfKind<K>]

/**
 * Reads one value at a time, as `CONFIG_VARIABLES` defines it (default, bounds), recording every
 * problem instead of stopping at the first, so a misconfigured start lists everything that is
 * wrong in one go.
 */
export class EnvReader {
  readonly problems: string[] = []
  readonly #env: Env

  constructor(env: Env) {
    this.#env = env
  }

  raw(name: VariableName | AwsVariable): string | undefined {
    const value = this.#env[name]
    return value === undefined || value.trim() === '' ? undefined : value.trim()
  }

  string(name: WithValueDefault<'text'>): string {
    return this.raw(name) ?? CONFIG_VARIABLES[name].default
  }

  int(name: VariableOfKind<'int'>): number {
    const { default: fallback, min, max } = CONFIG_VARIABLES[name]
    const value = this.raw(name)
    if (value === undefined) return fallback
    const parsed = /^\d+$/.test(value) ? Number(value) : Number.NaN
    if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
      this.problems.push(`${name} must be an integer from ${min} to ${max}, got "${value}"`)
      return fallback
    }
    return parsed
  }

  /** `derived` is the default of a variable whose default comes from the host. */
  number(name: VariableOfKind<'number'>, derived?: number): number {
    const spec: NumberVariable = CONFIG_VARIABLES[name]
    const fallback = typeof spec.default === 'number' ? spec.default : derived
    if (fallback === undefined) throw new Error(`${name} needs its derived default`)
    const value = this.raw(name)
    if (value === undefined) return fallback
    const parsed = /^\d+(\.\d+)?$/.test(value) ? Number(value) : Number.NaN
    if (!Number.isFinite(parsed) || parsed < spec.min || parsed > spec.max) {
      this.problems.push(`${name} must be a number from ${spec.min} to ${spec.max}, got "${value}"`)
      return fallback
    }
    return parsed
  }

  bool(name: VariableOfKind<'bool'>): boolean {
    const fallback = CONFIG_VARIABLES[name].default
    const value = this.raw(name)?.toLowerCase()
    if (value === undefined) return fallback
    if (['1', 'true', 'yes'].includes(value)) return true
    if (['0', 'false', 'no'].includes(value)) return false
    this.problems.push(`${name} must be true or false, got "${value}"`)
    return fallback
  }

  choice<N extends VariableOfKind<'choice'>>(
    name: N,
  ): (typeof CONFIG_VARIABLES)[N]['values'][number] {
    type Value = (typeof CONFIG_VARIABLES)[N]['values'][number]
    const spec: ChoiceVariable = CONFIG_VARIABLES[name]
    const value = this.raw(name)
    if (value === undefined) return spec.default as Value
    if (!spec.values.includes(value)) {
      this.problems.push(`${name} must be one of ${spec.values.join(', ')}, got "${value}"`)
      return spec.default as Value
    }
    return value as Value
  }
}

export const MIB = 1024 ** 2
export const GIB = 1024 ** 3
