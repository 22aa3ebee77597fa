import type { FastifyRequest, onRequestAsyncHookHandler } from 'fastify'
import type { AccountService } from '../accounts/account-service.js'
import type { Principal } from '../domain/organization.js'

// Request-scoped, so a WeakMap instead of a global `declare module 'fastify'` augmentation.
const principals = new WeakMap<FastifyRequest, Principal>()

/** An `onRequest` hook that resolves the bearer key before anything reads the body. */
export function authenticate(accounts: AccountService): onRequestAsyncHookHandler {
  return async (request) => {
    principals.set(request, await accounts.authenticate(request.headers.authorization))
  }
}

/** The caller of an authenticated route. */
export function principalOf(request: FastifyRequest): Principal {
  const principal = principals.get(request)
  // A route reached without the hook is a wiring bug, not a client error.
  if (principal === undefined) throw new Error(`route ${request.url} has no authentication hook`)
  return principal
}
