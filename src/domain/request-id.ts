/**
 * A request id berth takes from a client's `x-request-id` (any other gets one of berth's own):
 * what logs, traces and runners carry, so safe in each of them.
 */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/
