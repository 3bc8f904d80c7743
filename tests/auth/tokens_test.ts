// Unit tests of src/auth/tokens.ts: claims of issued tokens, verification failures, keys, JWKS, certs.

import * as jose from "jose";
import {
  builtInVerifier,
  certificateKeys,
  createIssuer,
  createVerifier,
  jwksKeys,
  loadSigningKey,
} from "../../src/auth/tokens.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../helpers.ts";
import { ecPrivateKeyPem, selfSignedEcCertificate } from "./x509.ts";

const ACCESS = [{ type: "repository", name: "127.0.0.1:5000/a", actions: ["pull", "push"] }];

Deno.test("tokens: issued claims follow jwt.md", async () => {
  const key = await loadSigningKey();
  const now = Date.UTC(2026, 0, 1);
  const issuer = createIssuer({
    key,
    issuer: "iss",
    service: "svc",
    ttlSeconds: 120,
    now: () => now,
  });
  const issued = await issuer.issue("alice", ACCESS);
  assertEquals(issued.expiresIn, 120);
  assertEquals(issued.issuedAt.toISOString(), "2026-01-01T00:00:00.000Z");
  const header = jose.decodeProtectedHeader(issued.token);
  assertEquals(header, { alg: "ES256", typ: "JWT", kid: key.kid });
  const claims = jose.decodeJwt(issued.token);
  assertEquals(claims.iss, "iss");
  assertEquals(claims.sub, "alice");
  assertEquals(claims.aud, "svc");
  assertEquals(claims.iat, now / 1000);
  assertEquals(claims.nbf, now / 1000);
  assertEquals(claims.exp, now / 1000 + 120);
  assert(typeof claims.jti === "string" && claims.jti.length > 0);
  assertEquals(claims.access, ACCESS);

  const verifier = await builtInVerifier(key, "iss", "svc", () => now + 60_000);
  assertEquals(await verifier.verify(issued.token), { subject: "alice", access: ACCESS });
  const anonymous = await issuer.issue("", []);
  assertEquals(await verifier.verify(anonymous.token), { subject: undefined, access: [] });
});

Deno.test("tokens: expired, wrong audience, wrong issuer, other key, garbage are refused", async () => {
  const key = await loadSigningKey();
  const other = await loadSigningKey();
  let clock = Date.now();
  const issuer = createIssuer({ key, issuer: "iss", service: "svc", now: () => clock });
  const token = (await issuer.issue("alice", ACCESS, 60)).token;
  const verify = async (iss: string, svc: string, k = key) =>
    (await builtInVerifier(k, iss, svc, () => clock)).verify(token);
  await verify("iss", "svc");
  await assertRejects(() => verify("iss", "other"));
  await assertRejects(() => verify("other", "svc"));
  await assertRejects(() => verify("iss", "svc", other));
  clock += 120_000;
  await assertRejects(() => verify("iss", "svc"), Error, "exp");
  await assertRejects(() =>
    createVerifier({ issuer: "iss", service: "svc", key: () => key.privateKey }).verify("x.y.z")
  );
});

Deno.test("tokens: a refresh token is not an access token, and the reverse", async () => {
  const key = await loadSigningKey();
  const issuer = createIssuer({ key, issuer: "iss", service: "svc" });
  const refresh = await issuer.issueRefresh("alice");
  assertEquals(await issuer.verifyRefresh(refresh), "alice");
  const verifier = await builtInVerifier(key, "iss", "svc");
  await assertRejects(() => verifier.verify(refresh));
  await assertRejects(async () => issuer.verifyRefresh((await issuer.issue("alice", [])).token));
});

Deno.test("tokens: PEM keys — SEC1 and PKCS#8 P-256 accepted, other curves refused", async () => {
  const key = await loadSigningKey(ecPrivateKeyPem("P-256", "sec1"));
  assertEquals(key.publicJwk.crv, "P-256");
  assertEquals(key.publicJwk.d, undefined);
  await loadSigningKey(ecPrivateKeyPem("P-256", "pkcs8"));
  await assertRejects(() => loadSigningKey(ecPrivateKeyPem("P-384", "pkcs8")), Error, "P-256");
  await assertRejects(() => loadSigningKey("nonsense"), Error, "not a PEM private key");
});

Deno.test("tokens: an external server's JWKS and certificate verify its tokens", async () => {
  const { privateKey, publicKey } = await jose.generateKeyPair("RS256", { extractable: true });
  const jwk = { ...await jose.exportJWK(publicKey), kid: "k1", alg: "RS256" };
  const token = await new jose.SignJWT({ access: ACCESS })
    .setProtectedHeader({ alg: "RS256", kid: "k1" })
    .setIssuer("ext").setAudience("svc").setSubject("bob").setExpirationTime("1m")
    .sign(privateKey);
  const viaJwks = createVerifier({
    issuer: "ext",
    service: "svc",
    key: jwksKeys({ json: JSON.stringify({ keys: [jwk] }) }),
  });
  assertEquals(await viaJwks.verify(token), { subject: "bob", access: ACCESS });
  assertThrows(() => jwksKeys({ json: "{}" }), Error, "keys");

  // A self-signed certificate for an EC key (as `openssl req -x509` makes); its tokens are ES256.
  const { keyPem, certPem } = selfSignedEcCertificate("token");
  const signing = await loadSigningKey(keyPem);
  const issued = await createIssuer({ key: signing, issuer: "ext", service: "svc" }).issue(
    "bob",
    [],
  );
  const cert = certificateKeys(certPem);
  assertEquals(cert.algorithms, ["ES256"]);
  const viaCert = createVerifier({ issuer: "ext", service: "svc", ...cert });
  assertEquals((await viaCert.verify(issued.token)).subject, "bob");
  await assertRejects(() => viaCert.verify(token), Error);
  // A certificate of another key does not verify these tokens.
  const stranger = certificateKeys(selfSignedEcCertificate("other").certPem);
  await assertRejects(() =>
    createVerifier({ issuer: "ext", service: "svc", ...stranger }).verify(issued.token)
  );
});
