import { randomUUID } from 'node:crypto'
import { link, mkdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises'
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
 * machine is taken over only once it has gone a minute untouched and stays untouched while this
 * server watches it for one and a half heartbeats (so that clocks that disagree cannot make a
 * live lock look dead). A server started again on another machine after a crash waits that long.
 */
export class DataDirLock {
  readonly #path: string
  readonly #me: Holder
  readonly #heartbeat: NodeJS.Timeout
  #released = false

  private constructor(path: string, me: Holder, heartbeatMs: number) {
    this.#path = path
    this.#me = me
    this.#heartbeat = setInterval(() => void this.#touch(), heartbeatMs)
    this.#heartbeat.unref()
  }

  /**
   * Takes the directory's lock for this process. Throws `data_dir_locked` (naming the pid, and
   * the machine when it is another) while a live server holds it. `heartbeatMs`: how often the
   * holder touches its lock (tests shorten it).
   */
  static async acquire(
    dataDir: string,
    options: { readonly heartbeatMs?: number } = {},
  ): Promise<DataDirLock> {
    const heartbeatMs = options.heartbeatMs ?? HEARTBEAT_MS
    await mkdir(dataDir, { recursive: true, mode: 0o700 })
    const path = join(dataDir, LOCK_FILE)
    const me: Holder = {
      pid: process.pid,
      startedAt: await startTimeOf(process.pid),
      host: hostname(),
    }
    // Twice at most: the second try follows the removal of a dead holder's lock.
    for (let attempt = 0; attempt < 2; attempt++) {
      // Written whole beside it, then linked into place (which fails if a lock exists): a lock
      // file is never seen half-written, so never judged dead while its holder writes it.
      const draft = `${path}.${process.pid}.${randomUUID()}`
      try {
        await writeFile(draft, `${JSON.stringify(me)}\n`, { mode: 0o600 })
        await link(draft, path)
        return new DataDirLock(path, me, heartbeatMs)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      } finally {
        await rm(draft, { force: true })
      }
      const seen = await stat(path).catch(() => undefined)
      const holder = await readHolder(path)
      if (holder !== undefined && holder.host !== null && holder.host !== me.host) {
        if (await touchedElsewhere(path, seen?.mtimeMs ?? 0, heartbeatMs)) {
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
      // Removed only if it is still the lock judged dead: another server starting beside this
      // one may have taken it over meanwhile.
      const now = await stat(path).catch(() => undefined)
      if (now !== undefined && (now.ino !== seen?.ino || now.mtimeMs !== seen?.mtimeMs)) continue
      await rm(path, { force: true })
    }
    throw new BerthError(
      'data_dir_locked',
      `another berth server took the data directory ${dataDir} while this one started`,
    )
  }

  /** Touches the lock while it is still this server's; a lock taken over is left alone. */
  async #touch(): Promise<void> {
    if (!sameHolder(await readHolder(this.#path), this.#me)) {
      clearInterval(this.#heartbeat)
      return
    }
    const now = new Date()
    await utimes(this.#path, now, now).catch(() => undefined)
  }

  /** Gives the directory up (its lock file, if it is still this server's). Idempotent. */
  async release(): Promise<void> {
    if (this.#released) return
    this.#released = true
    clearInterval(this.#heartbeat)
    if (sameHolder(await readHolder(this.#path), this.#me)) await rm(this.#path, { force: true })
  }
}

/**
 * Whether a lock of another machine lives: touched within `STALE_MS` by this machine's clock, or
 * touched again while watched for one and a half heartbeats.
 */
async function touchedElsewhere(
  path: string,
  mtimeMs: number,
  heartbeatMs: number,
): Promise<boolean> {
  if (Date.now() - mtimeMs < STALE_MS) return true
  await new Promise((resolve) => setTimeout(resolve, heartbeatMs * 1.5))
  const later = await stat(path).catch(() => undefined)
  return later !== undefined && later.mtimeMs !== mtimeMs
}

function sameHolder(a: Holder | undefined, b: Holder): boolean {
  return a !== undefined && a.pid === b.pid && a.startedAt === b.startedAt && a.host === b.host
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
