// The web UI in headless Chromium (Debian `chromium`, driven by puppeteer-core) against a real
// registry with pushed images: search, repository → tag → layer files, copy, delete, sign in and
// out; no console errors; screenshots at phone and desktop widths in artifacts/ui/.

import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { assert, assertEquals, envVar, registryClient, tempDir, withServer } from "../helpers.ts";
import { authServer, basic } from "../auth/fixtures.ts";
import { pushSampleImage, pushSamples } from "./fixtures.ts";

// Functions passed to page.evaluate run in the page: its globals, typed loosely (no DOM lib here,
// whose types clash with Deno's).
// deno-lint-ignore no-explicit-any
declare const document: any, localStorage: any, sessionStorage: any, clipboard: any;

const CHROMIUM = envVar("CHROMIUM") ?? "/usr/bin/chromium";
const HAVE_CHROMIUM = (() => {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
})();
/** Skipped (with a message) without Chromium; under CI=true a missing Chromium fails instead. */
const IGNORE = !HAVE_CHROMIUM && envVar("CI") !== "true";
if (IGNORE) {
  console.warn(`${CHROMIUM} is missing: browser tests skipped (apt-get install chromium)`);
}

export const ARTIFACTS = new URL("../../artifacts/ui/", import.meta.url).pathname;
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844, isMobile: true, hasTouch: true };

interface Session extends AsyncDisposable {
  browser: Browser;
  page: Page;
  /** Console errors, uncaught exceptions and failed requests seen so far. */
  problems: string[];
}

export async function openBrowser(): Promise<Session> {
  const profile = await tempDir("ui-chromium-");
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      `--user-data-dir=${profile.path}`,
    ],
  });
  const page = await browser.newPage();
  const problems: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`page error: ${(error as Error).message}`));
  page.on("requestfailed", (request) => {
    problems.push(`request failed: ${request.url()} ${request.failure()?.errorText}`);
  });
  await Deno.mkdir(ARTIFACTS, { recursive: true });
  return {
    browser,
    page,
    problems,
    async [Symbol.asyncDispose]() {
      await browser.close();
      await profile[Symbol.asyncDispose]();
    },
  };
}

/** Waits until the page's main content has a heading with `text` (a page finished loading). */
async function heading(page: Page, text: string) {
  await page.waitForFunction(
    (wanted) => document.querySelector("main h1")?.textContent?.includes(wanted),
    { timeout: 10_000 },
    text,
  );
}

const texts = (page: Page, selector: string) =>
  page.$$eval(selector, (els) => els.map((el) => el.textContent?.trim() ?? ""));

async function shot(page: Page, name: string) {
  await page.evaluate(() => document.fonts.ready);
  await page.screenshot({ path: `${ARTIFACTS}${name}.png`, fullPage: true });
  // Nothing may stick out sideways (a phone would scroll the whole page).
  const overflow = await page.evaluate(() =>
    document.documentElement.scrollWidth - document.documentElement.clientWidth
  );
  assert(overflow <= 0, `${name}: the page is ${overflow}px wider than the window`);
}

async function click(page: Page, selector: string) {
  await page.waitForSelector(selector, { visible: true, timeout: 10_000 });
  await page.click(selector);
}

Deno.test({
  name: "ui browser: browse, search, layer files, diff, copy, delete; phone and desktop",
  ignore: IGNORE,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using s = await withServer("memory");
    const samples = await pushSamples(s.client);
    await using browser = await openBrowser();
    const { page, problems } = browser;
    const origin = s.url;
    await browser.browser.defaultBrowserContext().overridePermissions(origin, [
      "clipboard-read",
      "clipboard-write",
      "clipboard-sanitized-write",
    ]);
    await page.setViewport(DESKTOP);
    await page.emulateMediaFeatures([{ name: "prefers-color-scheme", value: "light" }]);

    // Repositories, and the filter as you type.
    await page.goto(`${origin}/`, { waitUntil: "networkidle0" });
    await heading(page, "Repositories");
    assertEquals(await texts(page, "#repository-results td.name a"), [
      "team/app",
      "team/multi",
      "tools/zstd",
    ]);
    await shot(page, "repositories-desktop");
    await page.type("#filter", "mul");
    await page.waitForFunction(() =>
      document.querySelectorAll("#repository-results tbody tr").length === 1
    );
    assertEquals(await texts(page, "#repository-results td.name a"), ["team/multi"]);
    assertEquals(new URL(page.url()).search, "?q=mul", "the filter is in the address");
    await page.click("#filter", { count: 3 });
    await page.keyboard.press("Backspace");
    await page.waitForFunction(() =>
      document.querySelectorAll("#repository-results tbody tr").length === 3
    );

    // Repository → tag → layer files.
    await page.click("#repository-results a[href='/ui/r/team/app']");
    await heading(page, "team/app");
    assertEquals(await texts(page, "#tag-results td.name a"), ["1.0", "1.1", "latest"]);
    await shot(page, "repository-desktop");

    // Copy a pull command.
    await click(page, "button[aria-label='Copy the pull command for team/app:1.1']");
    await page.waitForFunction(() =>
      document.getElementById("toast")?.textContent === "Copied to the clipboard"
    );
    const copied = await page.evaluate(() =>
      (navigator as unknown as { clipboard: typeof clipboard }).clipboard.readText()
    );
    assertEquals(copied, `docker pull ${new URL(origin).host}/team/app:1.1`);

    await page.click("#tag-results a[href='/ui/r/team/app:1.1']");
    await heading(page, "team/app:1.1");
    const referrers = await texts(page, "section[aria-label='Referrers'] .pill");
    assertEquals(referrers.sort(), ["SBOM", "signature"]);
    await shot(page, "image-desktop");
    await click(page, "a[aria-label='Files in layer 1']");
    await heading(page, "Layer files");
    const paths = await texts(page, "#file-results .path");
    assert(paths.includes("etc/os-release"), paths.join(", "));
    await page.type("input[type=search]", "host");
    await page.waitForFunction(() =>
      document.querySelectorAll("#file-results tbody tr").length === 1
    );
    await shot(page, "files-desktop");

    // A zstd layer, and an index's platforms.
    await page.goto(`${origin}/ui/files/tools/zstd@${samples.zstdImage.layers[1].digest}`, {
      waitUntil: "networkidle0",
    });
    await heading(page, "Layer files");
    assert((await texts(page, ".stat .value")).includes("zstd"));
    await page.goto(`${origin}/ui/r/team/multi:latest`, { waitUntil: "networkidle0" });
    await heading(page, "team/multi:latest");
    assertEquals(await texts(page, "section[aria-label='Platforms'] td.name a"), [
      "linux/amd64",
      "linux/arm64/v8",
    ]);
    await shot(page, "index-desktop");

    // Compare two tags from the repository page.
    await page.goto(`${origin}/ui/r/team/app`, { waitUntil: "networkidle0" });
    await heading(page, "team/app");
    await page.click("form.compare button[type=submit]");
    await heading(page, "1.0");
    const stats = await texts(page, ".stat .value");
    assertEquals(stats.slice(0, 3), ["2 layers", "1 layer", "1 layer"]);
    await shot(page, "diff-desktop");

    await page.goto(`${origin}/ui/storage`, { waitUntil: "networkidle0" });
    await heading(page, "Storage");
    await shot(page, "storage-desktop");

    // Delete a tag, after a cancelled first try.
    await page.goto(`${origin}/ui/r/team/app`, { waitUntil: "networkidle0" });
    await heading(page, "team/app");
    await click(page, "button[aria-label='Delete the tag 1.0']");
    await page.waitForSelector("dialog[open]");
    await shot(page, "delete-dialog-desktop");
    await page.keyboard.press("Escape");
    await page.waitForFunction(() => !document.querySelector("dialog"));
    assertEquals((await s.client.get("/v2/team/app/manifests/1.0")).status, 200, "cancelled");
    await click(page, "button[aria-label='Delete the tag 1.0']");
    await click(page, "dialog[open] button.danger");
    await page.waitForFunction(() =>
      ![...document.querySelectorAll("#tag-results td.name a")].some((a) => a.textContent === "1.0")
    );
    assertEquals((await s.client.get("/v2/team/app/manifests/1.0")).status, 404, "deleted");
    assertEquals((await s.client.get("/v2/team/app/manifests/1.1")).status, 200, "others kept");

    // Keyboard: the skip link comes first and lands in the content; sort headers are buttons.
    await page.goto(`${origin}/ui/r/team/app`, { waitUntil: "networkidle0" });
    await heading(page, "team/app");
    await page.keyboard.press("Tab");
    assertEquals(await page.evaluate(() => document.activeElement?.textContent), "Skip to content");
    await page.keyboard.press("Enter");
    assertEquals(await page.evaluate(() => location.hash), "#main");
    const sortable = await page.$$eval("th[aria-sort] button", (els) => els.length);
    assertEquals(sortable, 2);
    await page.click("th[aria-sort] button");
    await page.waitForFunction(() =>
      document.querySelector("th[aria-sort]")?.getAttribute("aria-sort") === "descending"
    );

    // Phone width, and dark.
    await page.setViewport(PHONE);
    for (
      const [name, path] of [
        ["repositories", "/"],
        ["repository", "/ui/r/team/app"],
        ["image", "/ui/r/team/app:1.1"],
        ["files", `/ui/files/team/app@${samples.app11.layers[1].digest}`],
        ["diff", "/ui/diff/team/app?from=latest&to=1.1"],
        ["storage", "/ui/storage"],
      ]
    ) {
      await page.goto(origin + path, { waitUntil: "networkidle0" });
      await page.waitForSelector("main h1");
      await shot(page, `${name}-phone`);
    }
    await page.setViewport(DESKTOP);
    await page.emulateMediaFeatures([{ name: "prefers-color-scheme", value: "dark" }]);
    await page.goto(`${origin}/ui/r/team/app:1.1`, { waitUntil: "networkidle0" });
    await heading(page, "team/app:1.1");
    await shot(page, "image-desktop-dark");

    assertEquals(problems, [], "no console errors, page errors or failed requests");
  },
});

Deno.test({
  name: "ui browser: sign in and out with htpasswd; only permitted repositories",
  ignore: IGNORE,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using s = await authServer({
      mode: "basic",
      users: { alice: "alice-pw", bob: "bob-pw" },
      policy: {
        groups: { admins: ["alice"] },
        rules: [
          { users: ["@admins"], repositories: ["**"], actions: ["*"] },
          { users: ["bob"], repositories: ["team/*"], actions: ["pull"] },
          { users: ["anonymous", "*"], repositories: ["public/**"], actions: ["pull"] },
          { users: ["anonymous", "*"], actions: ["catalog"] },
        ],
      },
    });
    const admin = registryClient(s.url, basic("alice", "alice-pw"));
    await pushSamples(admin);
    await pushSampleImage(admin, "public/hello", "1", { layers: [{ files: [{ path: "hello" }] }] });
    await using browser = await openBrowser();
    const { page, problems } = browser;
    await page.setViewport(DESKTOP);
    await page.emulateMediaFeatures([{ name: "prefers-color-scheme", value: "light" }]);

    await page.goto(`${s.url}/`, { waitUntil: "networkidle0" });
    await heading(page, "Repositories");
    assertEquals(await texts(page, "#repository-results td.name a"), ["public/hello"]);
    await click(page, "#account a.button");
    await heading(page, "Sign in");
    await page.type("input[name=username]", "bob");
    await page.type("input[name=password]", "bob-pw");
    await shot(page, "login-desktop");
    await page.click("form button[type=submit]");
    await heading(page, "Repositories");
    await page.waitForFunction(() =>
      document.getElementById("account")?.textContent?.includes("bob")
    );
    assertEquals(await texts(page, "#repository-results td.name a"), [
      "public/hello",
      "team/app",
      "team/multi",
    ]);
    // The session is in an HttpOnly cookie: nothing the page's scripts could read or keep.
    assertEquals(await page.evaluate(() => document.cookie), "");
    assertEquals(await page.evaluate(() => localStorage.length + sessionStorage.length), 0);
    assert(!page.url().includes("bob-pw"), "no secret in the address");
    await shot(page, "repositories-signed-in-desktop");
    await page.goto(`${s.url}/ui/r/team/app`, { waitUntil: "networkidle0" });
    await heading(page, "team/app");
    assertEquals(
      await page.$$eval("button[aria-label^='Delete']", (els) => els.length),
      0,
      "bob may not delete",
    );

    await click(page, "#account button");
    await page.waitForFunction(() =>
      document.getElementById("account")?.textContent?.includes("Sign in")
    );
    await heading(page, "Repositories");
    assertEquals(await texts(page, "#repository-results td.name a"), ["public/hello"]);
    assertEquals(problems, [], "no console errors, page errors or failed requests");

    // A private repository's address, signed out: a sign-in prompt in place of the page.
    await page.goto(`${s.url}/ui/r/team/app`, { waitUntil: "networkidle0" });
    await heading(page, "Sign in to continue");
    assert(
      problems.every((problem) => /Failed to load resource.*401/.test(problem)),
      `only the refused fetch is reported: ${problems.join("\n")}`,
    );
  },
});
