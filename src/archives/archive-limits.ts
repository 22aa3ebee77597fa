/** Bounds on what an uploaded archive may unpack to (configured by `BERTH_MAX_*`). */
export interface ArchiveLimits {
  /** Entries of any kind, directories included. */
  readonly maxEntries: number
  /** Sum of the unpacked bytes (declared in headers and actually produced). */
  readonly maxUnpackedBytes: number
  /** Unpacked / compressed bytes above which the archive is a decompression bomb… */
  readonly maxCompressionRatio: number
  /** …checked only once this many bytes are unpacked: small, very regular files are fine. */
  readonly ratioGraceBytes: number
}
