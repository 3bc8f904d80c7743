// The UI's calls to its data endpoints (/ui/api/): JSON in and out, the registry's errors as
// exceptions, and the session (who is signed in, the CSRF token every change must carry).

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** The session as GET /ui/api/session describes it; refreshed at each navigation. */
export const session = {
  auth: "none",
  user: null,
  signIn: false,
  deletes: true,
  csrf: "",
  host: location.host,
};

async function call(method, path, body) {
  const headers = { accept: "application/json" };
  if (method !== "GET") headers["x-csrf-token"] = session.csrf;
  if (body !== undefined) headers["content-type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch {
    throw new ApiError(0, "NETWORK", "The registry cannot be reached.");
  }
  const text = await response.text();
  let value;
  try {
    value = text ? JSON.parse(text) : undefined;
  } catch {
    value = undefined;
  }
  if (!response.ok) {
    const error = value?.errors?.[0];
    throw new ApiError(
      response.status,
      error?.code ?? "UNKNOWN",
      error?.message ?? `The registry answered ${response.status}.`,
    );
  }
  return value;
}

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, body);
export const del = (path) => call("DELETE", path);

export async function loadSession() {
  Object.assign(session, await get("/ui/api/session"));
  return session;
}

export async function signIn(user, password) {
  Object.assign(session, await post("/ui/api/session", { user, password }));
}

export async function signOut() {
  Object.assign(session, await del("/ui/api/session"));
}

/** The path of a repository's data endpoints. */
export const repo = (name) => `/ui/api/r/${name}`;

/** Query string from an object, empty values left out. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}
