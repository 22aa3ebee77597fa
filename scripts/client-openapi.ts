import { writeFile } from 'node:fs/promises'
import { CLIENT_OPENAPI, clientOpenApi } from '../test/helpers/client-openapi.js'

// Writes the server's OpenAPI document where @berth/client generates its types from
// (packages/client/openapi.json). Run after changing a route or a schema: `npm run openapi:client`.
// test/client/openapi-fresh.test.ts fails while the file and the server disagree.

const spec = await clientOpenApi()
await writeFile(CLIENT_OPENAPI, `${JSON.stringify(spec, null, 2)}\n`)
process.stdout.write(`wrote ${CLIENT_OPENAPI}\n`)
