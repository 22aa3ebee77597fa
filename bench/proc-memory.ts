import { readdir, readFile } from 'node:fs/promises'

/**
 * A process's memory as Linux reports it in `/proc/PID/status`: resident now (`VmRSS`) and its
 * peak (`VmHWM`), in bytes; 0 for a process that is gone.
 */
export async function processMemory(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '')
  const kb = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1] ?? 0)
  return { rss: kb('VmRSS') * 1024, peak: kb('VmHWM') * 1024 }
}

/** Pids of the live processes whose parent is `pid` (a server's runners). */
export async function childrenOf(pid: number): Promise<number[]> {
  const found: number[] = []
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '')
    // The fourth field, after the parenthesised command (which may hold spaces).
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
    if (ppid === pid) found.push(Number(name))
  }
  return found
}
