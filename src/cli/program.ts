import { Command, InvalidArgumentError, Option } from 'commander'
import type { Config } from '../config/config.js'
import { LOAD_POLICIES } from '../domain/load-policy.js'
import { TIERS } from '../domain/organization.js'
import * as admin from './admin-commands.js'
import * as client from './client-commands.js'
import type { Rendered } from './output.js'
import { clientFor } from './server-client.js'
import { type ServingFlags, servingFields, type UploadFlags, upload } from './upload-command.js'

/**
 * The `berth` command tree (commander): every command and subcommand has `--help` with examples,
 * `berth --version` says the version, and a mistyped command or option gets "did you mean". An
 * action resolves what to print; `main.ts` prints it (JSON with `--json`) and picks exit codes.
 */

export interface ProgramIo {
  readonly stdin: NodeJS.ReadableStream
  /** Progress bars and `--wait`'s state changes: stderr. */
  readonly progress: NodeJS.WritableStream & { isTTY?: boolean }
  /** Help and version text: stdout. */
  readonly out: (text: string) => void
  /** The help a group without its command shows (stderr; nowhere with `--json`). */
  readonly helpOnError: (text: string) => void
}

export interface ProgramHooks {
  /** What `berth --version` says. */
  readonly version: string
  /** The configuration from the environment; throws `config_invalid`. */
  readonly config: () => Config
  readonly serve: (config: Config) => Promise<void>
  /** What the command answered, to print. */
  readonly answered: (result: Rendered) => void
}

const CONNECTION = `
Every command that talks to a server takes --url URL (or BERTH_URL; by default this machine's
server, at BERTH_PUBLIC_URL) and --api-key KEY (or BERTH_API_KEY; for this machine's server,
the bootstrap key file it wrote).`

const EXIT_CODES = `
Exit codes: 0 done; 1 the server or the store refused, or could not be reached (stderr says
why in one line, with its code); 2 a usage error.`

export function buildProgram(io: ProgramIo, hooks: ProgramHooks): Command {
  const program = new Command('berth')
    .description('berth: a self-hosted model registry and inference server')
    .version(hooks.version, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help for a command')
    .showSuggestionAfterError(true)
    // Its options before a command, a command's after it: `upload --version` is the model's.
    .enablePositionalOptions()
    .configureHelp({ sortSubcommands: false })
    .addHelpText(
      'after',
      `${CONNECTION}\n${EXIT_CODES}\n\nExamples:\n  berth serve\n  berth upload ./my-model --namespace demo --name my-model --version 1.0.0 --format onnx --wait\n  berth ls demo\n  berth upload --help`,
    )
    .exitOverride()
    .configureOutput({
      writeOut: io.out,
      writeErr: io.helpOnError,
      // Errors are printed by main.ts, in one line with their code.
      outputError: () => undefined,
    })

  const done = (result: Rendered) => hooks.answered(result)
  const connect = (options: ServerFlags) =>
    clientFor(hooks.config(), { url: options.url, apiKey: options.apiKey })
  /** A command that talks to a server: --url and --api-key. */
  const serverCommand = (name: string, description: string) =>
    withServerFlags(program.command(name).description(description))

  program
    .command('serve')
    .description('run the server (what npm start runs)')
    .addHelpText(
      'after',
      '\nRuns on BERTH_HOST:BERTH_PORT with the configuration in the BERTH_* variables (see\ndocs/configuration.md). One server per BERTH_DATA_DIR: a second one refuses to start.\n\nExamples:\n  berth serve\n  BERTH_PORT=9090 BERTH_DATA_DIR=/srv/berth berth serve',
    )
    .action(async () => hooks.serve(hooks.config()))

  const uploadCommand = serverCommand(
    'upload',
    'upload a model: a folder, a .tar.gz, a .tar or one model file',
  )
    .argument(
      '<path>',
      'a .tar.gz (sent as it is), a .tar, a folder or one model file (packed as it streams)',
    )
    .requiredOption('-n, --namespace <namespace>', 'the namespace (name or id)')
    .requiredOption('--name <name>', "the model's name")
    .requiredOption('--version <version>', 'its version, X.Y.Z')
    .requiredOption('--format <format>', 'onnx, safetensors, pytorch or huggingface')
  addUploadOptions(uploadCommand)
    .option('--wait', 'print each state change until the deployment settles')
    .addHelpText(
      'after',
      '\nOn a terminal, a progress bar shows the bytes read of the total, the rate and the ETA.\n\nExamples:\n  berth upload ./my-model -n demo --name my-model --version 1.0.0 --format onnx --wait\n  berth upload model.onnx -n demo --name tiny --version 1.0.0 --format onnx --memory-gb 0.5\n  berth upload bert.tar.gz -n demo --name bert --version 2.1.0 --format huggingface \\\n    --task-type embedding --replicas 2 --max-batch-size 32 --no-deploy',
    )
    .action(async (path: string, options: UploadFlags & ServerFlags) => {
      done(await upload(await connect(options), path, options, io.progress))
    })

  serverCommand('ls', "list a namespace's models")
    .argument('<namespace>', 'the namespace (name or id)')
    .addHelpText('after', '\nExamples:\n  berth ls demo\n  berth ls demo --json')
    .action(async (namespace: string, options: ServerFlags) => {
      done(await client.listModels(await connect(options), namespace))
    })

  const deployCommand = serverCommand('deploy', 'deploy a model, or redeploy it with new settings')
    .argument('<namespace>', 'the namespace (name or id)')
    .argument('<model_id>', 'the model, e.g. my-model_1_0_0')
    .option('--wait', 'print each state change until the deployment settles')
    .option('--reload', 'redeploy even when nothing changed')
  addServingOptions(deployCommand)
    .addHelpText(
      'after',
      '\nExamples:\n  berth deploy demo my-model_1_0_0 --wait\n  berth deploy demo my-model_1_0_0 --replicas 2 --max-batch-size 16 --wait',
    )
    .action(async (namespace: string, modelId: string, options: DeployFlags) => {
      const settings = servingFields(options)
      done(
        await client.deploy(await connect(options), namespace, modelId, {
          wait: options.wait === true,
          reload: options.reload === true,
          progress: io.progress,
          ...(Object.keys(settings).length === 0
            ? {}
            : { settings: settings as NonNullable<client.DeployOptions['settings']> }),
        }),
      )
    })

  serverCommand('undeploy', 'stop serving a model (it stays uploaded)')
    .argument('<namespace>', 'the namespace (name or id)')
    .argument('<model_id>', 'the model, e.g. my-model_1_0_0')
    .addHelpText('after', '\nExamples:\n  berth undeploy demo my-model_1_0_0')
    .action(async (namespace: string, modelId: string, options: ServerFlags) => {
      done(await client.undeploy(await connect(options), namespace, modelId))
    })

  serverCommand('rm', 'delete a model, its files and its archive')
    .argument('<namespace>', 'the namespace (name or id)')
    .argument('<model_id>', 'the model, e.g. my-model_1_0_0')
    .addHelpText('after', '\nExamples:\n  berth rm demo my-model_1_0_0')
    .action(async (namespace: string, modelId: string, options: ServerFlags) => {
      done(await client.deleteModel(await connect(options), namespace, modelId))
    })

  serverCommand('infer', 'run a model on an Open Inference Protocol request (JSON)')
    .argument('<namespace>', 'the namespace (name or id)')
    .argument('<model_id>', 'the model, e.g. my-model_1_0_0')
    .option('--data <json>', 'the request')
    .option('--file <path>', 'a file holding the request (stdin when neither is given)')
    .addHelpText(
      'after',
      `\nExamples:\n  berth infer demo tiny_1_0_0 --data '{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}'\n  berth infer demo tiny_1_0_0 --file request.json\n  cat request.json | berth infer demo tiny_1_0_0`,
    )
    .action(async (namespace: string, modelId: string, options: InferFlags) => {
      done(await client.infer(await connect(options), namespace, modelId, options, io.stdin))
    })

  serverCommand('status', "the node's capacity and use, and your deployments on it")
    .addHelpText('after', '\nExamples:\n  berth status\n  berth status --json')
    .action(async (options: ServerFlags) => done(await client.status(await connect(options))))

  const namespace = program
    .command('namespace')
    .alias('ns')
    .option(...JSON_FLAG)
    .description('create, list and delete namespaces')
    .addHelpText(
      'after',
      '\nExamples:\n  berth namespace create demo --description "models for the demo"\n  berth namespace ls\n  berth namespace rm demo',
    )
  withServerFlags(namespace.command('create').description('create a namespace'))
    .addHelpText(
      'after',
      '\nExamples:\n  berth namespace create demo --description "models for the demo"',
    )
    .argument('<name>', 'its name')
    .option('--description <text>', 'what it is for')
    .action(async (name: string, options: ServerFlags & { description?: string }) => {
      done(await client.createNamespace(await connect(options), name, options.description))
    })
  withServerFlags(namespace.command('ls').description("list your organization's namespaces"))
    .addHelpText('after', '\nExamples:\n  berth namespace ls\n  berth ns ls --json')
    .action(async (options: ServerFlags) =>
      done(await client.listNamespaces(await connect(options))),
    )
  withServerFlags(
    namespace.command('rm').description('delete a namespace (it must hold no models)'),
  )
    .addHelpText('after', '\nExamples:\n  berth namespace rm demo')
    .argument('<name>', 'its name or id')
    .action(async (name: string, options: ServerFlags) => {
      done(await client.deleteNamespace(await connect(options), name))
    })

  const adminIo = (options: { init?: boolean; json?: boolean }): admin.AdminIo => ({
    note: options.json === true ? undefined : io.progress,
    init: options.init === true,
  })
  const org = program
    .command('org')
    .option(...JSON_FLAG)
    .description('organizations (admin: writes to the configured database, server running or not)')
    .addHelpText(
      'after',
      '\nExamples:\n  berth org create acme --tier team\n  berth org set-tier acme enterprise\n  berth org ls',
    )
  withInit(org.command('create').description('create an organization'))
    .addHelpText('after', '\nExamples:\n  berth org create acme --tier team')
    .argument('<name>', 'its name')
    .addOption(new Option('--tier <tier>', 'its tier').choices(TIERS).default('free'))
    .action(async (name: string, options: { tier: string; init?: boolean }) => {
      done(await admin.orgCreate(hooks.config(), adminIo(options), name, options.tier))
    })
  withInit(org.command('set-tier').description("change an organization's tier"))
    .addHelpText('after', '\nExamples:\n  berth org set-tier acme enterprise')
    .argument('<org>', 'organization id or name')
    .argument('<tier>', 'free, pro, team or enterprise')
    .action(async (ref: string, tier: string, options: { init?: boolean }) => {
      done(await admin.orgSetTier(hooks.config(), adminIo(options), ref, tier))
    })

  withInit(org.command('ls').description('list the organizations'))
    .addHelpText('after', '\nExamples:\n  berth org ls\n  berth org ls --json')
    .action(async (options: { init?: boolean; json?: boolean }) => {
      done(await admin.orgList(hooks.config(), adminIo(options)))
    })

  const key = program
    .command('key')
    .option(...JSON_FLAG)
    .description('API keys (admin: writes to the configured database, server running or not)')
    .addHelpText(
      'after',
      '\nExamples:\n  berth key create --org acme --label ci\n  berth key ls --org acme\n  berth key revoke key_0123456789abcdef0123',
    )
  withInit(key.command('create').description('create an API key (printed once)'))
    .addHelpText('after', '\nExamples:\n  berth key create --org acme --label ci')
    .requiredOption('--org <org>', 'organization id or name')
    .option('--label <label>', 'what the key is for')
    .action(async (options: { org: string; label?: string; init?: boolean }) => {
      done(await admin.keyCreate(hooks.config(), adminIo(options), options.org, options.label))
    })
  withInit(key.command('ls').description("list an organization's keys (never the keys themselves)"))
    .addHelpText('after', '\nExamples:\n  berth key ls --org acme')
    .requiredOption('--org <org>', 'organization id or name')
    .action(async (options: { org: string; init?: boolean; json?: boolean }) => {
      done(await admin.keyList(hooks.config(), adminIo(options), options.org))
    })
  withInit(key.command('revoke').description('revoke an API key at once'))
    .addHelpText('after', '\nExamples:\n  berth key revoke key_0123456789abcdef0123')
    .argument('<key_id>', 'the key id (key_…)')
    .action(async (keyId: string, options: { init?: boolean }) => {
      done(await admin.keyRevoke(hooks.config(), adminIo(options), keyId))
    })

  return program
}

interface ServerFlags {
  readonly url?: string
  readonly apiKey?: string
}

interface InferFlags extends ServerFlags {
  readonly data?: string
  readonly file?: string
}

interface DeployFlags extends ServerFlags, ServingFlags {
  readonly wait?: boolean
  readonly reload?: boolean
}

const JSON_FLAG = ['--json', 'print JSON (errors too) instead of tables and text'] as const

function withServerFlags(command: Command): Command {
  return command
    .option(...JSON_FLAG)
    .option('--url <url>', 'the server (BERTH_URL)')
    .option('--api-key <key>', 'an API key (BERTH_API_KEY)')
}

function withInit(command: Command): Command {
  return command
    .option(...JSON_FLAG)
    .option('--init', 'create the SQLite database when there is none yet')
}

function addServingOptions(command: Command): Command {
  return command
    .option('--replicas <n>', 'runners serving the model', wholeNumber)
    .option(
      '--max-batch-size <n>',
      'largest batch the dynamic batcher forms (1: none)',
      wholeNumber,
    )
    .option(
      '--max-queue-delay-us <us>',
      'how long a request may wait for others to batch with',
      wholeNumber,
    )
    .option(
      '--idle-timeout <s>',
      'an on-demand model at rest after this many idle seconds (0: never)',
      wholeNumber,
    )
    .addOption(
      new Option(
        '--load-policy <policy>',
        'eager: loaded on deploy and kept; on_demand: loaded by its first request',
      ).choices(LOAD_POLICIES),
    )
    .option(
      '--node-selector <json>',
      'node labels its runners need (swarm), e.g. \'{"gpu":"a100"}\'',
      jsonObject,
    )
}

function addUploadOptions(command: Command): Command {
  return addServingOptions(
    command
      .option('--task-type <type>', 'embedding or classification (with a tokenizer)')
      .option('--framework <framework>', 'what the model was trained with')
      .option('--num-cpus <n>', 'CPUs per runner', decimalNumber)
      .option('--num-gpus <n>', 'GPUs per runner', wholeNumber)
      .option('--memory-gb <n>', 'memory per runner, in GB (its limit)', decimalNumber)
      .option('--no-deploy', 'upload only; deploy later'),
  )
}

/** A flag's value that must be a whole number (checked before anything is sent: exit 2). */
function wholeNumber(value: string): number {
  if (!/^\d{1,15}$/.test(value)) throw new InvalidArgumentError('expected a whole number')
  return Number(value)
}

/** A flag's value that must be a number, in decimal digits (e.g. 0.5). */
function decimalNumber(value: string): number {
  if (!/^\d{1,15}(\.\d{1,15})?$/.test(value)) throw new InvalidArgumentError('expected a number')
  return Number(value)
}

/** A flag's value that must be a JSON object (`--node-selector`). */
function jsonObject(value: string): Record<string, unknown> {
  let parsed: unknown
  try {
    parsed = JSON.parse(value)
  } catch {
    throw new InvalidArgumentError('expected a JSON object')
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new InvalidArgumentError('expected a JSON object')
  }
  return parsed as Record<string, unknown>
}
