import { randomBytes } from 'node:crypto'
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3'
import pg from 'pg'

/**
 * The real servers some tests need, given by the environment (`.ci/run` starts throwaway ones;
 * `.ci/services.sh` does the same on a developer's machine):
 *   BERTH_TEST_DATABASE_URL  postgres://… of a database the tests may create schemas in
 *   BERTH_TEST_S3_ENDPOINT, BERTH_TEST_S3_KEY, BERTH_TEST_S3_SECRET  an S3 server (radosgw)
 * Without them those tests skip with the reason printed, unless BERTH_TEST_REQUIRE_SERVICES=1
 * (CI), where a missing server fails them instead.
 */
function skipOrFail(what: string, reason: string): string {
  if (process.env.BERTH_TEST_REQUIRE_SERVICES === '1') {
    throw new Error(`${what} is required (BERTH_TEST_REQUIRE_SERVICES=1): ${reason}`)
  }
  console.warn(
    `SKIPPING ${what} tests: ${reason} (start one with: eval "$(.ci/services.sh start)")`,
  )
  return reason
}

/** The PostgreSQL URL tests may use, or why they skip. */
export function postgresForTests(): { url: string } | { skip: string } {
  const url = process.env.BERTH_TEST_DATABASE_URL
  if (url === undefined || url === '') {
    return { skip: skipOrFail('PostgreSQL', 'BERTH_TEST_DATABASE_URL is not set') }
  }
  return { url }
}

/**
 * Fresh schemas in the test database, one per call, each dropped by `dropAll` (a test run
 * leaves nothing behind, and tests never see each other's tables).
 */
export function testSchemas(url: string) {
  const created: string[] = []
  return {
    next(): string {
      const schema = `berth_test_${randomBytes(6).toString('hex')}`
      created.push(schema)
      return schema
    },
    async dropAll(): Promise<void> {
      const client = new pg.Client({ connectionString: url })
      await client.connect()
      try {
        for (const schema of created.splice(0)) {
          await client.query(`drop schema if exists ${schema} cascade`)
        }
      } finally {
        await client.end()
      }
    },
  }
}

export interface S3ForTests {
  readonly endpoint: string
  readonly accessKeyId: string
  readonly secretAccessKey: string
  readonly region: string
}

/** The S3 server tests may use, or why they skip. */
export function s3ForTests(): S3ForTests | { skip: string } {
  const endpoint = process.env.BERTH_TEST_S3_ENDPOINT
  const accessKeyId = process.env.BERTH_TEST_S3_KEY
  const secretAccessKey = process.env.BERTH_TEST_S3_SECRET
  if (!endpoint || !accessKeyId || !secretAccessKey) {
    return {
      skip: skipOrFail(
        'S3',
        'BERTH_TEST_S3_ENDPOINT, BERTH_TEST_S3_KEY and BERTH_TEST_S3_SECRET are not all set',
      ),
    }
  }
  return { endpoint, accessKeyId, secretAccessKey, region: 'us-east-1' }
}

/** A fresh bucket name per call: S3 rules (lower case, 3–63 characters). */
export function testBucket(): string {
  return `berth-test-${randomBytes(6).toString('hex')}`
}

/** Every key in the bucket. */
export async function listBucket(s3: S3ForTests, bucket: string): Promise<string[]> {
  const client = new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  })
  try {
    const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket }))
    return (listed.Contents ?? []).map((o) => o.Key ?? '')
  } finally {
    client.destroy()
  }
}
