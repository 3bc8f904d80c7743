// Unit tests of src/proxy/config.ts: the --proxy-config JSON and --proxy NAME=URL, their defaults,
// and one-line errors that name the field.

import {
  checkUpstreamEntries,
  DEFAULT_TTL,
  loadUpstreams,
  parseProxyFlag,
  type Upstream,
} from "../../src/proxy/config.ts";
import { assert, assertEquals, assertMatch, assertRejects, assertThrows } from "../helpers.ts";

const files: Record<string, string> = {};
const deps = {
  readTextFile: (path: string) =>
    path in files ? Promise.resolve(files[path]) : Promise.reject(new Deno.errors.NotFound(path)),
  env: { HUB_TOKEN: "s3cret" } as Record<string, string | undefined>,
};

function load(config: unknown, proxy: string[] = []): Promise<Upstream[]> {
  files["/proxy.json"] = typeof config === "string" ? config : JSON.stringify(config);
  return loadUpstreams({ proxyConfig: "/proxy.json", proxy }, deps);
}

async function errorOf(config: unknown, proxy: string[] = []): Promise<string> {
  const error = await assertRejects(() => load(config, proxy));
  assert(!error.message.includes("\n"), `one line: ${error.message}`);
  return error.message;
}

Deno.test("proxy config: every field, and the defaults", async () => {
  files["/hub-password"] = "from-file\n";
  const [hub, ghcr, local] = await load({
    upstreams: [
      {
        name: "dockerhub",
        url: "https://docker.io",
        username: "me",
        passwordFile: "/hub-password",
        default: true,
      },
      {
        name: "ghcr",
        url: "https://ghcr.io",
        prefix: "mirrors/ghcr",
        ttl: "30s",
        username: "bot",
        password: "${HUB_TOKEN}",
      },
      { name: "local", url: "http://127.0.0.1:5001", namespaces: ["Registry.Local:5001"] },
    ],
  });
  assertEquals(hub, {
    name: "dockerhub",
    url: "https://registry-1.docker.io",
    prefix: "dockerhub",
    namespaces: ["docker.io", "index.docker.io", "registry-1.docker.io"],
    ttl: DEFAULT_TTL,
    username: "me",
    password: "from-file",
    default: true,
    dockerHub: true,
  });
  assertEquals(ghcr.prefix, "mirrors/ghcr");
  assertEquals(ghcr.namespaces, ["ghcr.io"]);
  assertEquals(ghcr.ttl, 30_000);
  assertEquals(ghcr.password, "s3cret");
  assertEquals(ghcr.dockerHub, false);
  assertEquals(local.namespaces, ["registry.local:5001"]);
  assertEquals(local.default, false);
  assertEquals("username" in local, false);
});

Deno.test("proxy config: --proxy NAME=URL, credentials in the URL", () => {
  assertEquals(parseProxyFlag("quay=https://bot:p%40ss@quay.io"), {
    name: "quay",
    url: "https://quay.io",
    prefix: "quay",
    namespaces: ["quay.io"],
    ttl: DEFAULT_TTL,
    username: "bot",
    password: "p@ss",
    default: false,
    dockerHub: false,
  });
  assertEquals(parseProxyFlag("hub=https://registry-1.docker.io").dockerHub, true);
});

Deno.test("proxy config: a bad file is one line naming the field", async () => {
  const cases: [unknown, RegExp][] = [
    ["{", /proxy config \/proxy\.json: not JSON/],
    [[], /expected a JSON object/],
    [{ upstream: [] }, /unknown field "upstream"/],
    [{ upstreams: [] }, /"upstreams" must be a non-empty list/],
    [{ upstreams: [{ url: "https://x.io" }] }, /upstreams\[0\]\.name is required/],
    [{ upstreams: [{ name: "x" }] }, /upstreams\[0\]\.url is required/],
    [{ upstreams: [{ name: "Bad Name", url: "https://x.io" }] }, /upstreams\[0\]\.name:/],
    [{ upstreams: [{ name: "x", url: "ftp://x.io" }] }, /upstreams\[0\]\.url: "ftp:\/\/x\.io"/],
    [{ upstreams: [{ name: "x", url: "https://x.io/v2/" }] }, /upstreams\[0\]\.url:/],
    [
      { upstreams: [{ name: "x", url: "https://u:p@x.io" }] },
      /upstreams\[0\]\.url: put credentials/,
    ],
    [
      { upstreams: [{ name: "x", url: "https://x.io", ttl: "soon" }] },
      /upstreams\[0\]\.ttl: "soon"/,
    ],
    [
      { upstreams: [{ name: "x", url: "https://x.io", ttl: 5 }] },
      /upstreams\[0\]\.ttl must be a string/,
    ],
    [{ upstreams: [{ name: "x", url: "https://x.io", prefix: "A/" }] }, /upstreams\[0\]\.prefix:/],
    [
      { upstreams: [{ name: "x", url: "https://x.io", namespaces: "x.io" }] },
      /\.namespaces must be a list/,
    ],
    [
      { upstreams: [{ name: "x", url: "https://x.io", namespaces: ["x.io/a"] }] },
      /\.namespaces: "x\.io\/a"/,
    ],
    [
      { upstreams: [{ name: "x", url: "https://x.io", username: "u" }] },
      /upstreams\[0\]\.username:/,
    ],
    [
      { upstreams: [{ name: "x", url: "https://x.io", password: "p", passwordFile: "/f" }] },
      /not both/,
    ],
    [
      { upstreams: [{ name: "x", url: "https://x.io", username: "u", passwordFile: "/none" }] },
      /upstreams\[0\]\.passwordFile \/none: no such file/,
    ],
    [
      { upstreams: [{ name: "x", url: "https://x.io", username: "u", password: "${NOPE}" }] },
      /upstreams\[0\]\.password: the environment variable NOPE is unset/,
    ],
    [
      { upstreams: [{ name: "x", url: "https://x.io", default: "yes" }] },
      /upstreams\[0\]\.default must be true or false/,
    ],
    [
      { upstreams: [{ name: "x", url: "https://x.io", mirror: 1 }] },
      /upstreams\[0\]: unknown field "mirror"/,
    ],
    [
      { upstreams: [{ name: "x", url: "https://x.io" }, { name: "x", url: "https://y.io" }] },
      /share the name "x"/,
    ],
    [
      { upstreams: [{ name: "x", url: "https://x.io" }, { name: "y", url: "https://x.io" }] },
      /share the namespace "x\.io"/,
    ],
    [{
      upstreams: [{ name: "x", url: "https://x.io" }, {
        name: "y",
        url: "https://y.io",
        prefix: "x/y",
      }],
    }, /lies inside "x"/],
    [{
      upstreams: [{ name: "x", url: "https://x.io", default: true }, {
        name: "y",
        url: "https://y.io",
        default: true,
      }],
    }, /only one upstream may be the default/],
  ];
  for (const [config, pattern] of cases) assertMatch(await errorOf(config), pattern);
  assertMatch(
    await errorOf({ upstreams: [{ name: "x", url: "https://x.io" }] }, ["x=https://z.io"]),
    /share the name "x"/,
  );
  const missing = await assertRejects(() =>
    loadUpstreams({ proxyConfig: "/nope.json", proxy: [] }, deps)
  );
  assertEquals(missing.message, "proxy config /nope.json: no such file");
});

Deno.test("proxy config: a bad --proxy is one line", () => {
  for (
    const flag of ["hub", "=https://x.io", "hub=x.io", "Hub=https://x.io", "hub=https://x.io/path"]
  ) {
    let message = "";
    try {
      parseProxyFlag(flag);
    } catch (error) {
      message = (error as Error).message;
    }
    assert(message !== "" && !message.includes("\n"), `${flag}: ${message}`);
  }
});

Deno.test("proxy config: the config file's upstreams section, its password file read at load", async () => {
  files["/hub.pw"] = "from-file\n";
  const section = checkUpstreamEntries([
    { name: "hub", url: "https://registry-1.docker.io", username: "me", passwordFile: "/hub.pw" },
  ]);
  const [hub, other] = await loadUpstreams({
    proxy: ["other=http://127.0.0.1:5001"],
    sections: { upstreams: section },
  }, deps);
  assertEquals([hub.name, hub.password, other.name], ["hub", "from-file", "other"]);
  // Checked when the file is read, before any password file is.
  const bad = assertThrows(() =>
    checkUpstreamEntries([{ name: "x", url: "https://x", ttl: "soon" }])
  );
  assertMatch(bad.message, /upstreams\[0\]\.ttl/);
});
