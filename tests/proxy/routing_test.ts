// Unit tests of src/proxy/routing.ts: a request's name (+ containerd's ns, + the default upstream)
// mapped to the one name the store and the access policy see.

import { RegistryError } from "../../src/errors.ts";
import { parseProxyFlag, type Upstream } from "../../src/proxy/config.ts";
import { createRouting, type NameRequest } from "../../src/proxy/routing.ts";
import { assertEquals, assertRejects } from "../helpers.ts";

const hub: Upstream = {
  ...parseProxyFlag("dockerhub=https://registry-1.docker.io"),
  default: true,
};
const ghcr = parseProxyFlag("ghcr=https://ghcr.io");
const local = new Set(["team/app", "library/local"]);
const routing = createRouting([hub, ghcr], (name) => Promise.resolve(local.has(name)));

const pull = (name: string, ns: string | null = null, host = "mirror:5000"): NameRequest => ({
  name,
  ns,
  action: "pull",
  host,
});

Deno.test("routing: containerd's ns picks the upstream by registry host", async () => {
  assertEquals(
    await routing.resolve(pull("library/nginx", "docker.io")),
    "dockerhub/library/nginx",
  );
  assertEquals(await routing.resolve(pull("nginx", "index.docker.io")), "dockerhub/library/nginx");
  assertEquals(await routing.resolve(pull("owner/tool", "GHCR.io")), "ghcr/owner/tool");
  // A local repository's name with an upstream's ns is that upstream's.
  assertEquals(await routing.resolve(pull("team/app", "ghcr.io")), "ghcr/team/app");
  // ns naming this registry itself: an ordinary local request.
  assertEquals(await routing.resolve(pull("team/app", "mirror:5000")), "team/app");
});

Deno.test("routing: an unknown ns is NAME_UNKNOWN naming it, whatever the name", async () => {
  for (const name of ["library/nginx", "team/app", "dockerhub/library/nginx"]) {
    const error = await assertRejects(() => routing.resolve(pull(name, "quay.io")), RegistryError);
    assertEquals((error as RegistryError).code, "NAME_UNKNOWN");
    assertEquals((error as RegistryError).status, 404);
    assertEquals(error.message, "no upstream mirrors the registry ns=quay.io");
  }
});

Deno.test("routing: a path prefix, with Docker Hub's library/ for unqualified names", async () => {
  assertEquals(await routing.resolve(pull("dockerhub/nginx")), "dockerhub/library/nginx");
  assertEquals(await routing.resolve(pull("dockerhub/library/nginx")), "dockerhub/library/nginx");
  assertEquals(await routing.resolve(pull("ghcr/solo")), "ghcr/solo"); // only Docker Hub has library/
  assertEquals(routing.proxied("ghcr/owner/tool")?.remote, "owner/tool");
  assertEquals(routing.proxied("ghcr/owner/tool")?.upstream.name, "ghcr");
  assertEquals(routing.proxied("ghcrx/tool"), undefined);
  assertEquals(routing.proxied("ghcr"), undefined);
});

Deno.test("routing: the default upstream answers pulls of names no local repository has", async () => {
  assertEquals(await routing.resolve(pull("library/nginx")), "dockerhub/library/nginx");
  assertEquals(await routing.resolve(pull("nginx")), "dockerhub/library/nginx");
  assertEquals(await routing.resolve(pull("team/app")), "team/app");
  assertEquals(await routing.resolve(pull("library/local")), "library/local");
  // A push or delete creates or changes a local repository, never the default upstream's.
  for (const action of ["push", "delete"]) {
    assertEquals(await routing.resolve({ ...pull("new/app"), action }), "new/app");
  }
  // No default: local.
  const plain = createRouting([ghcr], () => Promise.resolve(false));
  assertEquals(await plain.resolve(pull("library/nginx")), "library/nginx");
});

Deno.test("routing: a name that is not one is left to the handler's NAME_INVALID", async () => {
  assertEquals(await routing.resolve(pull("UPPER/case", "docker.io")), "UPPER/case");
});
