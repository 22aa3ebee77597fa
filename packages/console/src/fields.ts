import { useState } from 'preact/hooks'

/**
 * A form's text fields as one state: `field(name)` gives an input or a select its name, value
 * and change handler.
 */
export function useFields<T extends Record<string, string>>(initial: T) {
  const [fields, setFields] = useState<T>(initial)
  const field = (name: keyof T & string) => ({
    name,
    value: fields[name],
    onInput: (e: { currentTarget: { value: string } }) =>
      setFields({ ...fields, [name]: e.currentTarget.value }),
  })
  return { fields, setFields, field }
}
