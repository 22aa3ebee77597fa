import { execFileSync } from 'node:child_process'
import { readFile } from 'node:fs/promises'

/** Clock ticks per second, the unit of the CPU times in `/proc/PID/stat`. */
const TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim())

/** CPU time (user + system) the processes have used, in µs; a process that is gone counts 0. */
export async function cpuMicros(pids: readonly number[]): Promise<number> {
  let ticks = 0
  for (const pid of pids) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')
    if (stat === '') continue
    // utime and stime: the 14th and 15th fields, after the parenthesised command.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    ticks += Number(fields[11]) + Number(fields[12])
  }
  return (ticks / TICKS_PER_SECOND) * 1e6
}
