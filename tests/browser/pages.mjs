// Walks every page a visitor of `guichet demo` can see, in Debian's Chromium, with the keyboard
// only: the chooser, the mock provider, the demo application, /.guichet/me, the sign-out
// confirmation, the signed-out page and error pages. On each page axe-core runs (WCAG 2.1 A and
// AA, and axe's best practices) and every violation fails the run; the focus must be visible on
// every element the Tab key reaches. Screenshots of the chooser, an error page and the demo
// application are written to SCREENSHOT_DIR.
//
// Usage: node pages.mjs GATEWAY_URL SCREENSHOT_DIR
// Prints one line per page checked; exits 1 on the first failure, with what failed.

import { chromium } from "playwright-core";
import { AxeBuilder } from "@axe-core/playwright";
import { mkdirSync } from "node:fs";

const [gateway, screenshots] = process.argv.slice(2);
if (!gateway || !screenshots) {
  console.error("usage: node pages.mjs GATEWAY_URL SCREENSHOT_DIR");
  process.exit(2);
}
mkdirSync(screenshots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const context = await browser.newContext({ viewport: { width: 900, height: 760 }, locale: "fr-FR" });
const page = await context.newPage();

function fail(message) {
  console.error(`FAIL ${message}`);
  process.exitCode = 1;
  throw new Error(message);
}

/// axe-core on the current page: no violation at all.
async function audit(name) {
  const results = await new AxeBuilder({ page })
    .withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"])
    .analyze();
  if (results.violations.length > 0) {
    const detail = results.violations
      .map((v) => `${v.id} (${v.impact}): ${v.help}\n    ${v.nodes.map((n) => n.html).join("\n    ")}`)
      .join("\n  ");
    fail(`${name} (${page.url()}): ${results.violations.length} accessibility violation(s):\n  ${detail}`);
  }
  const lang = await page.getAttribute("html", "lang");
  const title = await page.title();
  if (!lang || !title) fail(`${name}: lang=${lang} title=${title}`);
  console.log(`ok ${name}: axe ${results.passes.length} rules passed, 0 violations; lang=${lang}; title="${title}"`);
}

/// What has the focus: a short description, and whether its focus is visible.
async function focused() {
  return page.evaluate(() => {
    const el = document.activeElement;
    if (!el || el === document.body) return null;
    const style = getComputedStyle(el);
    const visible =
      (style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0) ||
      style.boxShadow !== "none";
    const text = (el.innerText || el.value || el.getAttribute("aria-label") || "").trim().replace(/\s+/g, " ");
    return { tag: el.tagName.toLowerCase(), text, href: el.getAttribute("href") || "", cls: el.className || "", visible };
  });
}

/// Presses Tab until an element matching `wanted` has the focus (at most 40 times), checking
/// that the focus is visible on every element reached on the way.
async function tabTo(name, wanted) {
  for (let i = 0; i < 40; i++) {
    await page.keyboard.press("Tab");
    const el = await focused();
    if (!el) continue;
    if (!el.visible) fail(`${name}: no visible focus on <${el.tag} class="${el.cls}"> ${el.text}`);
    if (wanted(el)) return el;
  }
  fail(`${name}: the keyboard never reached the element looked for`);
}

/// Every link and button of the page is reached by Tab, in order, with a visible focus.
async function everyControlReachable(name) {
  const controls = await page.evaluate(
    () => [...document.querySelectorAll("a[href], button, input, select, textarea")].filter((el) => el.offsetParent !== null || el.className === "skip").length,
  );
  const reached = new Set();
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  for (let i = 0; i < controls + 2; i++) {
    await page.keyboard.press("Tab");
    const el = await focused();
    if (!el) continue;
    if (!el.visible) fail(`${name}: no visible focus on <${el.tag} class="${el.cls}"> ${el.text}`);
    reached.add(`${el.tag}|${el.href}|${el.text}`);
  }
  if (reached.size < controls) fail(`${name}: Tab reached ${reached.size} of ${controls} controls`);
  console.log(`ok ${name}: keyboard reaches all ${controls} controls, focus visible on each`);
}

try {
  // 1. A visitor arrives: the chooser.
  await page.goto(`${gateway}/dossiers/42?vue=liste`);
  if (!page.url().includes("/.guichet/login")) fail(`expected the chooser, got ${page.url()}`);
  await audit("chooser");
  await everyControlReachable("chooser");
  const buttons = await page.$$eval(".fr-connect", (els) =>
    els.map((el) => {
      const r = el.getBoundingClientRect();
      const about = el.nextElementSibling;
      const next = about?.querySelector("a");
      const n = about ? about.getBoundingClientRect() : null;
      return {
        text: el.innerText.replace(/\s+/g, " ").trim(),
        height: r.height,
        width: r.width,
        gap: n ? n.top - r.bottom : null,
        aboutSize: next ? parseFloat(getComputedStyle(next).fontSize) : null,
      };
    }),
  );
  for (const b of buttons) {
    // The federations: about 60 px high, the "what is it?" link 8 px below, 13 px or more.
    if (b.height < 48 || b.height > 72) fail(`chooser: button "${b.text}" is ${b.height} px high`);
    if (b.gap === null || b.gap < 6 || b.gap > 10) fail(`chooser: "what is it?" link ${b.gap} px below "${b.text}"`);
    if (b.aboutSize < 13) fail(`chooser: "what is it?" link of "${b.text}" in ${b.aboutSize} px`);
  }
  console.log(`ok chooser: ${buttons.map((b) => `"${b.text}" ${Math.round(b.width)}x${Math.round(b.height)} link +${Math.round(b.gap)}px`).join(", ")}`);
  await page.mouse.move(0, 0);
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  await page.screenshot({ path: `${screenshots}/chooser.png` });

  // 2. Keyboard only: the ProConnect button, the mock provider, the first test identity.
  await tabTo("chooser", (el) => el.cls.includes("fr-connect--pro"));
  await Promise.all([page.waitForNavigation(), page.keyboard.press("Enter")]);
  await audit("mock provider");
  await tabTo("mock provider", (el) => el.href.includes("agent=0"));
  await Promise.all([page.waitForURL((url) => url.pathname === "/dossiers/42"), page.keyboard.press("Enter")]);

  // 3. The demo application shows the identity.
  await audit("demo application");
  await page.screenshot({ path: `${screenshots}/demo-app.png`, fullPage: false });

  // 4. Who am I?
  await page.goto(`${gateway}/.guichet/me`);
  await audit("/.guichet/me");
  await everyControlReachable("/.guichet/me");

  // 5. Sign out from /.guichet/me with the keyboard: the federation's logout, then "signed out".
  await tabTo("/.guichet/me", (el) => el.tag === "button");
  await page.keyboard.press("Enter");
  await page.waitForURL((url) => url.pathname === "/.guichet/logged-out", { waitUntil: "load" });
  await audit("signed out");

  // 6. Signed out: /.guichet/me says so.
  await page.goto(`${gateway}/.guichet/me`);
  if (!(await page.textContent("h1")).includes("pas connecté")) fail("/.guichet/me after sign-out");
  await audit("/.guichet/me, signed out");

  // 7. Again through FranceConnect; then a sign-out link from elsewhere asks to confirm, and
  //    its button signs out.
  await page.goto(`${gateway}/dossiers/43`);
  await tabTo("chooser", (el) => el.href.includes("provider=franceconnect&"));
  await Promise.all([page.waitForNavigation(), page.keyboard.press("Enter")]);
  const elsewhere = new URL(page.url()).origin;
  await tabTo("mock provider", (el) => el.href.includes("agent=0"));
  await Promise.all([page.waitForURL((url) => url.pathname === "/dossiers/43"), page.keyboard.press("Enter")]);
  // A link from another site (here the provider's origin) to guichet's sign-out.
  await page.goto(`${elsewhere}/`);
  await Promise.all([
    page.waitForURL((url) => url.pathname === "/.guichet/logout"),
    page.evaluate((target) => window.location.assign(target), `${gateway}/.guichet/logout`),
  ]);
  if (!(await page.textContent("h1")).includes("Se déconnecter ?")) fail("expected the sign-out confirmation");
  await audit("sign-out confirmation");
  await everyControlReachable("sign-out confirmation");
  await tabTo("sign-out confirmation", (el) => el.tag === "button");
  await page.keyboard.press("Enter");
  await page.waitForURL((url) => url.pathname === "/.guichet/logged-out", { waitUntil: "load" });
  console.log("ok signed in and out through FranceConnect, with the confirmation page");

  // 8. Error pages.
  await page.goto(`${gateway}/.guichet/login?provider=nope`);
  await audit("error page (unknown provider)");
  await everyControlReachable("error page");
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  await page.screenshot({ path: `${screenshots}/error.png` });
  await page.goto(`${gateway}/.guichet/nowhere`);
  await audit("error page (not found)");
  console.log("all pages checked");
} catch (e) {
  if (!process.exitCode) console.error(`FAIL ${e.stack || e}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
