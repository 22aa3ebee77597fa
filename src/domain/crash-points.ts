/**
 * Named points of the upload, deploy and delete paths where a crash leaves the most half-done
 * work: between two writes that belong together (a temp file and the artifact store, the store
 * and the record, the record and the runners). The crash-consistency tests kill the server at
 * each of them and prove a restart leaves nothing orphaned, lost or half-recorded.
 */
export const CRASH_POINTS = [
  /** The archive is on local disk in tmp/, nothing else is written. */
  'upload_staged',
  /** The archive is unpacked and validated in tmp/. */
  'upload_validated',
  /** The archive is in the artifact store; no record points at it yet. */
  'upload_stored',
  /** The unpacked files are installed under models/; no record owns them yet. */
  'upload_installed',
  /** The model is recorded (wanted deployed when the upload asked); no runner started yet. */
  'upload_recorded',
  /** A deploy request's desired state is recorded; nothing acted on it yet. */
  'deploy_recorded',
  /** A deployment's runners have loaded the model; `deployed` is not recorded yet. */
  'deploy_loaded',
  /** An undeploy request's desired state is recorded; the runners still run. */
  'undeploy_recorded',
  /** A deleted model's record is gone; its archive and files are not yet. */
  'delete_recorded',
] as const
export type CrashPoint = (typeof CRASH_POINTS)[number]

/**
 * Called on reaching each crash point. The server's hook does nothing unless a crash test set
 * `BERTH_TEST_CRASH_AT` to that point, where it kills its own process (SIGKILL: no cleanup runs).
 */
export type CrashHook = (point: CrashPoint) => void

/** The hook of every server not under a crash test. */
export const noCrash: CrashHook = () => undefined
