// Owns every registry error code, its HTTP status, and the one function that renders them.
// Implements OCI distribution-spec v1.1 "Error Codes" (plus Docker's optional extras).

/** The error table: code → status and default message (distribution's errcode/register.go). */
export const ERROR_CODES = {
  BLOB_UNKNOWN: { status: 404, message: "blob unknown to registry" },
  BLOB_UPLOAD_INVALID: { status: 400, message: "blob upload invalid" },
  BLOB_UPLOAD_UNKNOWN: { status: 404, message: "blob upload unknown to registry" },
  DIGEST_INVALID: { status: 400, message: "provided digest did not match uploaded content" },
  MANIFEST_BLOB_UNKNOWN: {
    status: 400,
    message: "manifest references a manifest or blob unknown to registry",
  },
  MANIFEST_INVALID: { status: 400, message: "manifest invalid" },
  MANIFEST_UNKNOWN: { status: 404, message: "manifest unknown to registry" },
  NAME_INVALID: { status: 400, message: "invalid repository name" },
  NAME_UNKNOWN: { status: 404, message: "repository name not known to registry" },
  SIZE_INVALID: { status: 400, message: "provided length did not match content length" },
  UNAUTHORIZED: { status: 401, message: "authentication required" },
  DENIED: { status: 403, message: "requested access to the resource is denied" },
  UNSUPPORTED: { status: 405, message: "the operation is unsupported" },
  TOOMANYREQUESTS: { status: 429, message: "too many requests" },
  // Docker-only extras.
  TAG_INVALID: { status: 400, message: "manifest tag did not match URI" },
  PAGINATION_NUMBER_INVALID: { status: 400, message: "invalid number of results requested" },
  RANGE_INVALID: { status: 416, message: "invalid content range" },
  UNKNOWN: { status: 500, message: "unknown error" },
  UNAVAILABLE: { status: 503, message: "service unavailable" },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** A typed registry error; handlers throw it, `errorResponse` renders it. */
export class RegistryError extends Error {
  readonly code: ErrorCode;
  readonly detail: unknown;
  readonly headers: Record<string, string>;
  /** The table's status unless the spec asks another for this case (413, 416, 404 route). */
  readonly status: number;

  constructor(
    code: ErrorCode,
    message?: string,
    options: { detail?: unknown; headers?: Record<string, string>; status?: number } = {},
  ) {
    super(message ?? ERROR_CODES[code].message);
    this.name = "RegistryError";
    this.code = code;
    this.detail = options.detail;
    this.headers = options.headers ?? {};
    this.status = options.status ?? ERROR_CODES[code].status;
  }
}

/** Renders an error as the spec's `{"errors":[…]}` body with its status. */
export function errorResponse(error: RegistryError, method = "GET"): Response {
  const body = new TextEncoder().encode(JSON.stringify({
    errors: [{ code: error.code, message: error.message, detail: error.detail ?? {} }],
  }));
  const headers = new Headers(error.headers);
  headers.set("content-type", "application/json");
  headers.set("content-length", String(body.length));
  // A HEAD response has no body; its status and headers carry the error.
  return new Response(method === "HEAD" ? null : body, { status: error.status, headers });
}
