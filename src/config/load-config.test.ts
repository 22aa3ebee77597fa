import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isBerthError } from '../errors/berth-error.js'
import { loadConfig } from './load-config.js'

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env)
  } catch (err) {
    assert.ok(isBerthError(err, 'config_invalid'))
    return err.details?.problems as string[]
  }
  return assert.fail('expected config_invalid')
}

describe('loadConfig', () => {
  it('has the documented defaults', () => {
    const config = loadConfig({})
    assert.deepEqual(config.http, {
      host: '127.0.0.1',
      port: 8080,
      publicUrl: 'http://127.0.0.1:8080',
      bodyLimitBytes: 1048576,
      timeouts: { headersMs: 30_000, keepAliveMs: 72_000, bodyMs: 60_000, bodyIdleMs: 30_000 },
    })
    assert.equal(config.dataDir, './data')
    assert.deepEqual(config.metadata, { driver: 'sqlite', path: 'data/berth.db' })
    assert.deepEqual(config.artifacts, { driver: 'fs', root: 'data/archives' })
    assert.equal(config.scheduler.driver, 'local')
    assert.equal(config.inference.timeoutMs, 30_000)
    assert.deepEqual(config.deployments, {
      maxRestarts: 3,
      restartBackoffMs: 500,
      idleTimeoutMs: 600_000,
      waitTimeoutMs: 300_000,
      syncIntervalMs: 2000,
    })
    assert.equal(config.bootstrapApiKey, undefined)
    assert.equal(config.limits.maxArchiveBytes, 10 * 1024 ** 3)
    assert.equal(config.logLevel, 'info')
  })

  it("gives runners only the allowed part of the server's environment", () => {
    const env = {
      PATH: '/usr/bin',
      HOME: '/home/berth',
      OPENBLAS_CORETYPE: 'Haswell',
      OMP_NUM_THREADS: '1',
      AWS_SECRET_ACCESS_KEY: 'secret',
      BERTH_DATABASE_URL: 'postgres://user:password@db/berth',
      NODE_OPTIONS: '--require /tmp/evil.js',
    }
    assert.deepEqual(loadConfig(env).scheduler.runnerEnv, {
      PATH: '/usr/bin',
      HOME: '/home/berth',
      OPENBLAS_CORETYPE: 'Haswell',
      OMP_NUM_THREADS: '1',
    })
  })

  it("reads OpenTelemetry's endpoint variables, naming the one that is wrong", () => {
    assert.equal(loadConfig({}).tracing, undefined)
    assert.deepEqual(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:4318/' }).tracing, {
      url: 'http://otel:4318/v1/traces',
      serviceName: 'berth',
    })
    assert.deepEqual(
      loadConfig({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://ignored:4318',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://otel/traces',
        OTEL_SERVICE_NAME: 'edge',
      }).tracing,
      { url: 'https://otel/traces', serviceName: 'edge' },
    )
    assert.deepEqual(problemsOf({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'otel:4318' }), [
      'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT must be an http(s) URL, got "otel:4318"',
    ])
    assert.deepEqual(problemsOf({ OTEL_EXPORTER_OTLP_ENDPOINT: 'otel:4318' }), [
      'OTEL_EXPORTER_OTLP_ENDPOINT must be an http(s) URL, got "otel:4318/v1/traces"',
    ])
  })

  it('reads the swarm scheduler, which a manager engine serves', () => {
    const scheduler = loadConfig({ BERTH_SCHEDULER: 'swarm' }).scheduler
    assert.equal(scheduler.driver, 'swarm')
    assert.equal(scheduler.docker.host, 'unix:///var/run/docker.sock')
    assert.throws(
      () => loadConfig({ BERTH_SCHEDULER: 'nomad' }),
      (err) => isBerthError(err) && JSON.stringify(err.details).includes('BERTH_SCHEDULER'),
    )
  })

  it('lets runner containers fetch models from S3 (BERTH_RUNNER_FILES=fetch), and only them', () => {
    const s3 = {
      BERTH_STORAGE_URL: 's3://models',
      BERTH_S3_ENDPOINT: 'http://127.0.0.1:7480',
      BERTH_S3_RUNNER_ENDPOINT: 'http://10.0.0.1:7480',
    }
    const config = loadConfig({ ...s3, BERTH_SCHEDULER: 'swarm', BERTH_RUNNER_FILES: 'fetch' })
    assert.equal(config.scheduler.runnerFiles, 'fetch')
    assert.equal(
      config.artifacts.driver === 's3' ? config.artifacts.downloadEndpoint : '',
      'http://10.0.0.1:7480',
    )
    assert.equal(loadConfig({ BERTH_SCHEDULER: 'docker' }).scheduler.runnerFiles, 'mount')
    assert.deepEqual(problemsOf({ ...s3, BERTH_RUNNER_FILES: 'fetch' }), [
      'BERTH_RUNNER_FILES=fetch is for runner containers: BERTH_SCHEDULER must be docker or swarm',
    ])
    assert.deepEqual(problemsOf({ BERTH_SCHEDULER: 'docker', BERTH_RUNNER_FILES: 'fetch' }), [
      'BERTH_RUNNER_FILES=fetch has runners download archives from S3: BERTH_STORAGE_URL must be s3://…',
    ])
    assert.equal(problemsOf({ BERTH_RUNNER_FILES: 'copy' }).length, 1)
  })

  it('reads the docker scheduler: its engine socket and runtime images', () => {
    const host = { cpus: 2, memoryBytes: 1024 ** 3 }
    const scheduler = loadConfig(
      {
        BERTH_SCHEDULER: 'docker',
        BERTH_DOCKER_HOST: 'unix:///run/engine.sock',
        BERTH_RUNTIME_IMAGE_ONNX: 'registry.example/berth-runtime-onnx:1.0',
      },
      host,
    ).scheduler
    assert.equal(scheduler.driver, 'docker')
    assert.deepEqual(scheduler.docker, {
      host: 'unix:///run/engine.sock',
      images: { onnx: 'registry.example/berth-runtime-onnx:1.0', torch: 'berth-runtime-torch' },
    })
    assert.throws(
      () =>
        loadConfig({ BERTH_SCHEDULER: 'docker', BERTH_DOCKER_HOST: 'tcp://10.0.0.1:2375' }, host),
      (err) => isBerthError(err) && JSON.stringify(err.details).includes('BERTH_DOCKER_HOST'),
    )
  })

  it('offers the detected machine to deployments unless told otherwise', () => {
    const host = { cpus: 6, memoryBytes: 8 * 1024 ** 3 }
    assert.deepEqual(loadConfig({}, host).scheduler, {
      driver: 'local',
      docker: {
        host: 'unix:///var/run/docker.sock',
        images: { onnx: 'berth-runtime-onnx', torch: 'berth-runtime-torch' },
      },
      node: { cpus: 6, cpuOvercommit: 4, memoryBytes: 8 * 1024 ** 3, gpus: 0 },
      nodeGiven: { cpus: false, memory: false },
      torchPython: undefined,
      spareRunners: 1,
      sharedRunners: { maxModels: 32, maxModelBytes: 64 * 1024 ** 2 },
      runnerPing: { intervalMs: 5000, timeoutMs: 5000 },
      runnerEnv: {},
      runnerFiles: 'mount',
    })
    const set = loadConfig(
      {
        BERTH_NODE_CPUS: '1.5',
        BERTH_NODE_MEMORY_GB: '0.5',
        BERTH_NODE_GPUS: '2',
        BERTH_CPU_OVERCOMMIT: '1',
      },
      host,
    )
    assert.deepEqual(set.scheduler.nodeGiven, { cpus: true, memory: true })
    assert.deepEqual(set.scheduler.node, {
      cpus: 1.5,
      cpuOvercommit: 1,
      memoryBytes: 512 * 1024 ** 2,
      gpus: 2,
    })
    assert.equal(problemsOf({ BERTH_NODE_CPUS: 'many', BERTH_CPU_OVERCOMMIT: '0.5' }).length, 2)
  })

  it('reads how small models share runner processes', () => {
    const set = loadConfig({
      BERTH_SHARED_RUNNER_MAX_MODELS: '0',
      BERTH_SHARED_RUNNER_MAX_MODEL_MB: '8',
    })
    assert.deepEqual(set.scheduler.sharedRunners, { maxModels: 0, maxModelBytes: 8 * 1024 ** 2 })
    assert.equal(problemsOf({ BERTH_SHARED_RUNNER_MAX_MODELS: '-1' }).length, 1)
  })

  it('bounds the tensors a request brings into a runner', () => {
    assert.equal(loadConfig({}).inference.maxTensorBytes, 1024 ** 3)
    assert.equal(
      loadConfig({ BERTH_MAX_INFER_TENSOR_BYTES: '1048576' }).inference.maxTensorBytes,
      1024 ** 2,
    )
    assert.equal(problemsOf({ BERTH_MAX_INFER_TENSOR_BYTES: String(1024 ** 3 + 1) }).length, 1)
  })

  it('bounds the queue and pings idle runners unless told otherwise', () => {
    assert.equal(loadConfig({}).inference.maxQueueSize, 1024)
    const set = loadConfig({
      BERTH_MAX_QUEUE_SIZE: '8',
      BERTH_RUNNER_PING_INTERVAL_MS: '250',
      BERTH_RUNNER_PING_TIMEOUT_MS: '100',
    })
    assert.equal(set.inference.maxQueueSize, 8)
    assert.deepEqual(set.scheduler.runnerPing, { intervalMs: 250, timeoutMs: 100 })
    assert.equal(loadConfig({ BERTH_RUNNER_PING_INTERVAL_MS: '0' }).scheduler.runnerPing, undefined)
    assert.equal(
      problemsOf({ BERTH_MAX_QUEUE_SIZE: '0', BERTH_RUNNER_PING_TIMEOUT_MS: '5' }).length,
      2,
    )
  })

  it('derives paths and the public URL from other variables', () => {
    const config = loadConfig({
      BERTH_DATA_DIR: '/srv/berth',
      BERTH_HOST: '::1',
      BERTH_PORT: '9000',
    })
    assert.deepEqual(config.metadata, { driver: 'sqlite', path: '/srv/berth/berth.db' })
    assert.deepEqual(config.artifacts, { driver: 'fs', root: '/srv/berth/archives' })
    assert.equal(config.http.publicUrl, 'http://[::1]:9000')
  })

  it('reads explicit URLs', () => {
    const config = loadConfig({
      BERTH_DATABASE_URL: 'sqlite:///var/lib/berth/meta.db',
      BERTH_STORAGE_URL: 'file://./blobs',
      BERTH_PUBLIC_URL: 'https://models.example.com/',
    })
    assert.deepEqual(config.metadata, { driver: 'sqlite', path: '/var/lib/berth/meta.db' })
    assert.deepEqual(config.artifacts, { driver: 'fs', root: './blobs' })
    assert.equal(config.http.publicUrl, 'https://models.example.com')
  })

  it('reads PostgreSQL and S3 settings', () => {
    const config = loadConfig({
      BERTH_DATABASE_URL: 'postgres://berth:secret@db.internal:5432/berth',
      BERTH_DATABASE_SCHEMA: 'tenant_a',
      BERTH_STORAGE_URL: 's3://models/berth/archives/',
      BERTH_S3_ENDPOINT: 'http://127.0.0.1:7480',
      BERTH_S3_FORCE_PATH_STYLE: 'true',
    })
    assert.deepEqual(config.metadata, {
      driver: 'postgres',
      url: 'postgres://berth:secret@db.internal:5432/berth',
      schema: 'tenant_a',
      poolSize: 10,
    })
    assert.deepEqual(config.artifacts, {
      driver: 's3',
      bucket: 'models',
      prefix: 'berth/archives',
      endpoint: 'http://127.0.0.1:7480',
      region: 'us-east-1',
      forcePathStyle: true,
    })
    assert.deepEqual(
      problemsOf({
        BERTH_STORAGE_URL: 's3://Bad_Bucket',
        BERTH_S3_FORCE_PATH_STYLE: 'maybe',
        BERTH_DATABASE_URL: 'postgres://x/y',
        BERTH_DATABASE_SCHEMA: 'Robert; drop',
      }).length,
      3,
    )
  })

  it('reports every problem at once', () => {
    const problems = problemsOf({
      BERTH_PORT: '70000',
      BERTH_MAX_ARCHIVE_BYTES: '-1',
      BERTH_LOG_LEVEL: 'chatty',
      BERTH_PUBLIC_URL: 'ftp://x',
      BERTH_SCHEDULER: 'nomad',
      BERTH_STORAGE_URL: 'gs://bucket',
    })
    assert.equal(problems.length, 6)
    for (const name of [
      'BERTH_PORT',
      'BERTH_MAX_ARCHIVE_BYTES',
      'BERTH_LOG_LEVEL',
      'BERTH_PUBLIC_URL',
      'BERTH_SCHEDULER',
      'BERTH_STORAGE_URL',
    ]) {
      assert.ok(
        problems.some((p) => p.startsWith(name)),
        name,
      )
    }
  })

  it('says which drivers it does not know (or not yet), without echoing credentials', () => {
    const problems = problemsOf({
      BERTH_DATABASE_URL: 'mysql://u:p@localhost/berth',
      BERTH_STORAGE_URL: 'gs://bucket/prefix',
      BERTH_SCHEDULER: 'kubernetes',
    })
    assert.equal(problems.length, 3)
    assert.ok(!problems.join('\n').includes('u:p@'), 'credentials echoed')
  })

  it('checks the bootstrap key without echoing it', () => {
    const problems = problemsOf({ BERTH_BOOTSTRAP_API_KEY: 'not-a-key-hunter2' })
    assert.equal(problems.length, 1)
    assert.ok(!problems[0]?.includes('hunter2'))
    const key = 'sk_abcdefghijklmnopqrstuvwxyz'
    assert.equal(loadConfig({ BERTH_BOOTSTRAP_API_KEY: key }).bootstrapApiKey, key)
  })

  it('reads how /metrics is served, checking the token without echoing it', () => {
    assert.deepEqual(loadConfig({}).metrics, { token: undefined, listen: undefined })
    const token = 'metrics-token-0123456789'
    assert.deepEqual(
      loadConfig({ BERTH_METRICS_TOKEN: token, BERTH_METRICS_PORT: '9464' }).metrics,
      {
        token,
        listen: { host: '127.0.0.1', port: 9464 },
      },
    )
    assert.deepEqual(
      loadConfig({ BERTH_METRICS_PORT: '0', BERTH_METRICS_HOST: '10.0.0.5' }).metrics.listen,
      { host: '10.0.0.5', port: 0 },
    )
    const problems = problemsOf({
      BERTH_METRICS_TOKEN: 'short hunter2',
      BERTH_METRICS_PORT: '0x10',
    })
    assert.equal(problems.length, 2, problems.join('\n'))
    assert.ok(problems[0]?.startsWith('BERTH_METRICS_TOKEN'))
    assert.ok(!problems.join('\n').includes('hunter2'), 'the token was echoed')
    assert.ok(problems[1]?.startsWith('BERTH_METRICS_PORT'))
    const alone = problemsOf({ BERTH_METRICS_HOST: '0.0.0.0' })
    assert.equal(alone.length, 1)
    assert.ok(alone[0]?.startsWith('BERTH_METRICS_HOST'))
  })

  it('treats empty values as unset and freezes the result', () => {
    const config = loadConfig({ BERTH_PORT: '', BERTH_HOST: '  ' })
    assert.equal(config.http.port, 8080)
    assert.equal(config.http.host, '127.0.0.1')
    assert.ok(Object.isFrozen(config))
    assert.ok(Object.isFrozen(config.http))
    assert.throws(() => {
      ;(config.http as { port: number }).port = 1
    })
  })
})
