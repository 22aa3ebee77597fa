import type { Config, SchedulerConfig } from './config.js'
import { type Env, type EnvReader, GIB, MIB } from './env-reader.js'
import type { HostFacts } from './host-facts.js'

/** Where runners run, and what they get: the `BERTH_SCHEDULER` family of variables. */

export function readScheduler(read: EnvReader, host: HostFacts, env: Env): SchedulerConfig {
  // Named in the docs as planned, so it gets its own answer rather than "must be one of".
  let driver: SchedulerConfig['driver'] = 'local'
  if (read.raw('BERTH_SCHEDULER') === 'kubernetes') {
    read.problems.push('BERTH_SCHEDULER: kubernetes is not supported by this version of berth yet')
  } else {
    driver = read.choice('BERTH_SCHEDULER') as SchedulerConfig['driver']
  }
  const dockerHost = read.string('BERTH_DOCKER_HOST')
  if (!dockerHost.startsWith('unix://') || dockerHost.length <= 'unix://'.length) {
    read.problems.push('BERTH_DOCKER_HOST must be unix:// and the path of the engine socket')
  }
  const memoryGb = read.number('BERTH_NODE_MEMORY_GB', host.memoryBytes / GIB)
  return {
    driver,
    docker: {
      host: dockerHost,
      images: {
        onnx: read.string('BERTH_RUNTIME_IMAGE_ONNX'),
        torch: read.string('BERTH_RUNTIME_IMAGE_TORCH'),
      },
    },
    node: {
      cpus: read.number('BERTH_NODE_CPUS', host.cpus),
      cpuOvercommit: read.number('BERTH_CPU_OVERCOMMIT'),
      memoryBytes: Math.round(memoryGb * GIB),
      // The bundled ONNX Runtime is the CPU build: GPUs are offered only when configured.
      gpus: read.int('BERTH_NODE_GPUS'),
    },
    runnerFiles: read.choice('BERTH_RUNNER_FILES') as SchedulerConfig['runnerFiles'],
    nodeGiven: {
      cpus: read.raw('BERTH_NODE_CPUS') !== undefined,
      memory: read.raw('BERTH_NODE_MEMORY_GB') !== undefined,
    },
    torchPython: read.raw('BERTH_TORCH_PYTHON'),
    spareRunners: read.int('BERTH_SPARE_RUNNERS'),
    sharedRunners: {
      maxModels: read.int('BERTH_SHARED_RUNNER_MAX_MODELS'),
      maxModelBytes: read.int('BERTH_SHARED_RUNNER_MAX_MODEL_MB') * MIB,
    },
    runnerPing: readRunnerPing(read),
    runnerEnv: runnerEnvironment(env),
  }
}

/**
 * What runners inherit of the server's environment: where programs and libraries are, the
 * locale, time zone and temp dir, and the math libraries' settings (OpenBLAS, OpenMP, MKL: their
 * kernels and threads decide the very bits a model computes). Nothing else: a runner loads
 * untrusted models, and the server's environment holds its database URL, keys and `AWS_*`
 * credentials.
 */
const RUNNER_ENV_NAMES = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR', 'LD_LIBRARY_PATH']
const RUNNER_ENV_PREFIXES = ['OPENBLAS_', 'OMP_', 'MKL_', 'KMP_', 'GOTO_']

/** The part of `env` runners get: see `RUNNER_ENV_NAMES`. */
export function runnerEnvironment(env: Env): Record<string, string> {
  const passes = (name: string) =>
    RUNNER_ENV_NAMES.includes(name) || RUNNER_ENV_PREFIXES.some((p) => name.startsWith(p))
  return Object.fromEntries(
    Object.entries(env).filter(
      (entry): entry is [string, string] => passes(entry[0]) && entry[1] !== undefined,
    ),
  )
}

function readRunnerPing(read: EnvReader): SchedulerConfig['runnerPing'] {
  const intervalMs = read.int('BERTH_RUNNER_PING_INTERVAL_MS')
  const timeoutMs = read.int('BERTH_RUNNER_PING_TIMEOUT_MS')
  return intervalMs === 0 ? undefined : { intervalMs, timeoutMs }
}

/** `BERTH_RUNNER_FILES=fetch` is for runner containers, from an S3 artifact store. */
export function checkRunnerFiles(read: EnvReader, config: Config): void {
  if (config.scheduler.runnerFiles !== 'fetch') return
  if (config.scheduler.driver === 'local') {
    read.problems.push(
      'BERTH_RUNNER_FILES=fetch is for runner containers: BERTH_SCHEDULER must be docker or swarm',
    )
  }
  if (config.artifacts.driver !== 's3') {
    read.problems.push(
      'BERTH_RUNNER_FILES=fetch has runners download archives from S3: BERTH_STORAGE_URL must be s3://…',
    )
  }
}
