// Walks ROUTES (src/routes.ts): every route and method is refused without its right, in Basic and
// token mode, before its handler touches storage — so a new route cannot be added unprotected.

import { ROUTES } from "../../src/routes.ts";
import type { StorageDriver } from "../../src/storage/driver.ts";
import { createMemoryDriver } from "../../src/storage/memory.ts";
import { assert, assertEquals, readResponse, type Res } from "../helpers.ts";
import { authServer, basic, bearer } from "./fixtures.ts";

const NAME = "private/app";
const SAMPLES: Record<string, string> = {
  name: NAME,
  digest: `sha256:${"a".repeat(64)}`,
  uuid: "0b0e9e3c-5c4b-4c8e-9d1e-3f2a1b0c9d8e",
  reference: "latest",
  file: "app.js",
};

/** A concrete path for a route's pattern; an unknown parameter fails the test (add a sample). */
function samplePath(pattern: string): string {
  return pattern.replace(/:(\w+)(\([^)]*\))?/g, (_, param: string) => {
    const sample = SAMPLES[param];
    if (sample === undefined) throw new Error(`no sample for :${param} in ${pattern}`);
    return sample;
  });
}

// /metrics last: a scrape may start an inventory of storage in the background.
const ENDPOINTS = ROUTES.flatMap((route) =>
  Object.entries(route.methods).map(([method, endpoint]) => ({
    spec: route.spec,
    path: samplePath(route.pattern.pathname),
    method,
    action: endpoint!.action,
  }))
).sort((a, b) => Number(a.spec === "metrics") - Number(b.spec === "metrics"));

// Each user holds exactly one right on private/**; `other` holds everything elsewhere.
const RIGHTS = ["pull", "push", "delete", "catalog"] as const;
const USERS = { pull: "pw", push: "pw", delete: "pw", catalog: "pw", other: "pw" };
const POLICY = {
  rules: [
    ...["pull", "push", "delete"].map((a) => ({
      users: [a],
      repositories: ["private/**"],
      actions: [a],
    })),
    { users: ["catalog"], actions: ["catalog"] },
    { users: ["other"], repositories: ["elsewhere/**"], actions: ["pull", "push", "delete"] },
  ],
};

/** A driver that counts calls: a refused request must not reach storage. */
function countingDriver(): { driver: StorageDriver; calls: () => number } {
  let calls = 0;
  const inner = createMemoryDriver();
  const driver = new Proxy(inner, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        calls++;
        return value.apply(target, args);
      };
    },
  });
  return { driver, calls: () => calls };
}

async function send(url: string, method: string, path: string, headers: HeadersInit): Promise<Res> {
  return readResponse(
    await fetch(url + path, {
      method,
      headers,
      body: method === "PUT" || method === "PATCH" || method === "POST" ? "{}" : undefined,
    }),
  );
}

/** Routes that check credentials themselves, and those that need none (they hold no data). */
const LOGIN = ["/auth/token", "/ui/api/session"];
const PUBLIC = ["ui-page", "ui-page-storage", "ui-page-login", "ui-page-repository"]
  .concat(["ui-page-files", "ui-page-diff", "ui-static", "ui-session", "healthz", "readyz"]);

Deno.test("auth routes: the table is what this test knows; only sign-ins are `login`", () => {
  for (const endpoint of ENDPOINTS) {
    assert(
      ["pull", "push", "delete", "catalog", "login", "public"].includes(endpoint.action),
      `${endpoint.spec} ${endpoint.method}: unknown action ${endpoint.action}`,
    );
    if (endpoint.action === "login") {
      assert(
        LOGIN.includes(endpoint.path),
        `${endpoint.path}: only sign-ins check their own creds`,
      );
    }
    if (endpoint.action === "public") {
      assert(PUBLIC.includes(endpoint.spec), `${endpoint.spec} is public: it must hold no data`);
    }
  }
  const covered = new Set(ENDPOINTS.map((e) => e.spec));
  for (
    const spec of [
      "end-1",
      "catalog",
      "all-tags",
      "end-8a/8b",
      "end-12a/12b",
      "end-4a/4b/11",
      "end-5/6/13/14",
      "end-2/10",
      "end-3/7/9",
      "metrics",
    ]
  ) {
    assert(covered.has(spec), `route ${spec} is walked`);
  }
});

for (const mode of ["basic", "token"] as const) {
  Deno.test(`auth routes [${mode}]: no route answers without its right, and none touches storage`, async () => {
    const { driver, calls } = countingDriver();
    await using s = await authServer({
      mode,
      users: USERS,
      policy: POLICY,
      driver,
      // One bad password per route: not a sprayer to slow down.
      tuning: { limits: { address: { freeFailures: 100, maxFailures: 200 } } },
    });
    const credentials = async (user: string, action: string): Promise<HeadersInit> => {
      if (mode === "basic") return basic(user, "pw");
      const scope = action === "catalog"
        ? "registry:catalog:*"
        : `repository:${NAME}:pull,push,delete`;
      const res = await fetch(`${s.url}/auth/token?scope=${encodeURIComponent(scope)}`, {
        headers: basic(user, "pw"),
      });
      return bearer((await res.json()).token);
    };
    const refusals = (res: Res, what: string, anonymous: boolean) => {
      if (mode === "basic" && !anonymous) {
        assertEquals(res.status, 403, `${what}: ${res.text}`);
        assertEquals(res.json().errors[0].code, "DENIED", what);
      } else {
        assertEquals(res.status, 401, `${what}: ${res.text}`);
        assertEquals(res.json().errors[0].code, "UNAUTHORIZED", what);
        assert(res.headers.get("www-authenticate"), `${what}: a challenge`);
      }
    };

    let walked = 0;
    for (const endpoint of ENDPOINTS) {
      if (endpoint.action === "login") continue;
      if (endpoint.action === "public") {
        // Health probes answer everyone, credentials or not (the UI's public pages too).
        if (endpoint.spec !== "healthz" && endpoint.spec !== "readyz") continue;
        for (const headers of [{}, basic("pull", "wrong")]) {
          const res = await send(s.url, endpoint.method, endpoint.path, headers);
          assertEquals(res.status, 200, `${endpoint.path}: ${res.text}`);
        }
        continue;
      }
      const what = `${endpoint.method} ${endpoint.path} (${endpoint.action})`;
      const before = calls();
      refusals(await send(s.url, endpoint.method, endpoint.path, {}), `anonymous ${what}`, true);
      const bogus = mode === "basic" ? basic("pull", "wrong") : bearer("x.y.z");
      assertEquals(
        (await send(s.url, endpoint.method, endpoint.path, bogus)).status,
        401,
        `bad credentials ${what}`,
      );
      const base = endpoint.path === "/v2/";
      for (const user of [...RIGHTS, "other"]) {
        if (base || user === endpoint.action) continue;
        const res = await send(
          s.url,
          endpoint.method,
          endpoint.path,
          await credentials(user, endpoint.action),
        );
        refusals(res, `${user} ${what}`, false);
      }
      assertEquals(calls(), before, `${what}: refused requests reached storage`);
      // Positive control: the right holder gets past auth (whatever the handler then says).
      const holder = base ? "other" : endpoint.action;
      const res = await send(
        s.url,
        endpoint.method,
        endpoint.path,
        await credentials(holder, endpoint.action),
      );
      assert(
        ![401, 403].includes(res.status),
        `${holder} ${what} must pass auth: ${res.status} ${res.text}`,
      );
      walked++;
    }
    assert(walked >= 13, `walked ${walked} endpoints`);
  });
}
