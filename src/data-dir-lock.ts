import { mkdir, open, readFile, rm, stat, utimes } from 'node:fs/promises'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { BerthError } from './errors/berth-error.js'

const LOCK_FILE = 'berth.lock'

/** How often a holder touches its lock, so a server on another machine can tell it lives. */
const HEARTBEAT_MS = 10_000

/** A lock from another machine untouched this long is a dead server's. */
const STALE_MS = 6 * HEARTBEAT_MS

/**
 * Who holds a lock: a process on a machine, told apart from a later one reusing its pid by its
 * start time.
 */
interface Holder {
  readonly pid: number
  readonly startedAt: string | null
  /** The machine it runs on; `null` in locks written before berth recorded it. */
  readonly host: string | null
}

/**
 * One server per data directory. The directory holds the embedded database, the unpacked models
 * and the pid files of the runners this server started (or the label of its runner containers);
 * a second server on it would take the first one's runners for leftovers of a crash and end
 * them. The lock is a file naming the holder's pid, start time and machine; one whose holder is
 * gone is taken over. A data directory on a shared filesystem (the `swarm` scheduler's) may be
 * seen from several machines: the holder touches its lock every 10 s, and a lock of another
 * machine is taken over only once it has gone a minute untouched.
 */
export class DataDirLock {
  readonly #path: string
  readonly #heartbeat: NodeJS.Timeout
  #released = false

  private constructor(path: string) {
    this.#path = path
    this.#heartbeat = setInterval(() => {
      const now = new Date()
      void utimes(path, now, now).catch(() => undefined)
    }, HEARTBEAT_MS)
    this.#heartbeat.unref()
  }

  /**
   * Takes the directory's lock for this process. Throws `data_dir_locked` (naming the pid)
   * while a live server holds it.
   */
  static async acquire(dataDir: string): Promise<DataDirLock> {
    await mkdir(dataDir, { recursive: true, mode: 0o700 })
    const path = join(dataDir, LOCK_FILE)
    const me: Holder = {
      pid: process.pid,
      startedAt: await startTimeOf(process.pid),
      host: hostname(),
    }
    // Twice at most: the second try follows the removal of a dead holder's lock.
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const file = await open(path, 'wx', 0o600)
        await file.writeFile(`${JSON.stringify(me)}\n`)
        await file.close()
        return new DataDirLock(path)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      }
      const holder = await readHolder(path)
      if (holder !== undefined && holder.host !== null && holder.host !== me.host) {
        const untouchedMs = Date.now() - ((await stat(path).catch(() => undefined))?.mtimeMs ?? 0)
        if (untouchedMs < STALE_MS) {
          throw new BerthError(
            'data_dir_locked',
            `a berth server on ${holder.host} (pid ${holder.pid}) uses the data directory ${dataDir}; stop it, or give this one its own BERTH_DATA_DIR`,
            { details: { pid: holder.pid, host: holder.host } },
          )
        }
      } else if (holder !== undefined && (await isAlive(holder))) {
        throw new BerthError(
          'data_dir_locked',
          `another berth server (pid ${holder.pid}) uses the data directory ${dataDir}; stop it, or give this one its own BERTH_DATA_DIR`,
          { details: { pid: holder.pid } },
        )
      }
      await rm(path, { force: true })
    }
    throw new BerthError(
      'data_dir_locked',
      `another berth server took the data directory ${dataDir} while this one started`,
    )
  }

  /** Gives the directory up. Idempotent. */
  async release(): Promise<void> {
    if (this.#released) return
    this.#released = true
    clearInterval(this.#heartbeat)
    await rm(this.#path, { force: true })
  }
}

async function readHolder(path: string): Promise<Holder | undefined> {
  try {
    const value: unknown = JSON.parse(await readFile(path, 'utf8'))
    if (typeof value !== 'object' || value === null) return undefined
    const { pid, startedAt, host } = value as Record<string, unknown>
    if (!Number.isSafeInteger(pid) || (pid as number) <= 0) return undefined
    return {
      pid: pid as number,
      startedAt: typeof startedAt === 'string' ? startedAt : null,
      host: typeof host === 'string' ? host : null,
    }
  } catch {
    // Unreadable or half-written: whoever wrote it is not a server that started properly.
    return undefined
  }
}

async function isAlive(holder: Holder): Promise<boolean> {
  try {
    process.kill(holder.pid, 0)
  } catch (err) {
    // EPERM: alive, another user's. ESRCH: gone.
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
  // The pid is taken: by the holder, unless it started at another time (a reused pid).
  const startedAt = await startTimeOf(holder.pid)
  return holder.startedAt === null || startedAt === null || startedAt === holder.startedAt
}

/** The process's start time in clock ticks since boot (`/proc/PID/stat` field 22), if known. */
async function startTimeOf(pid: number): Promise<string | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    // The command name (field 2) may hold spaces and parentheses: count from its closing one.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return fields[19] ?? null
  } catch {
    return null
  }
}
