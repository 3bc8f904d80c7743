// Owns the API version check: GET /v2/ answers 200 with `{}`.
// Implements distribution-spec v1.1 end-1.

import { json } from "../http.ts";

export function checkVersion(): Promise<Response> {
  return Promise.resolve(json({}));
}
