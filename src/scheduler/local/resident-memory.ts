import { readFile } from 'node:fs/promises'

/**
 * The resident set of a process in bytes, from Linux's `/proc/PID/status`; `undefined` where
 * there is no procfs or the process is gone (memory limits are then not enforced).
 */
export async function residentBytes(pid: number): Promise<number | undefined> {
  let status: string
  try {
    status = await readFile(`/proc/${pid}/status`, 'utf8')
  } catch {
    return undefined
  }
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status)
  return match?.[1] === undefined ? undefined : Number(match[1]) * 1024
}

/** Whether memory limits can be enforced on this machine. */
export async function canMeasureResidentMemory(): Promise<boolean> {
  return (await residentBytes(process.pid)) !== undefined
}
