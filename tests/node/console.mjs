// Drives the web console in headless Chromium the way an operator would, against a running host
// whose queue holds one failed `hello` job (FAILED_JOB) and whose plugin folder now has hello.wasm.
// Saves a screenshot per page to SCREENSHOTS and prints what it saw as one JSON line.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const base = need("FLOH_URL");
const token = need("ADMIN_TOKEN");
const failedJob = need("FAILED_JOB");
const shots = need("SCREENSHOTS");
mkdirSync(shots, { recursive: true });

function need(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} must be set`);
  return value;
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
  ],
});
const context = await browser.newContext({ viewport: { width: 1200, height: 860 } });
const page = await context.newPage();
const consoleErrors = [];
// Refused requests (the wrong token, the CSRF check) are logged by Chromium too; only script
// errors count.
page.on("console", (m) => m.type() === "error" && !m.text().startsWith("Failed to load resource") && consoleErrors.push(m.text()));
page.on("pageerror", (error) => consoleErrors.push(error.message));
const seen = {};

async function shot(name) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

/// Does `act` and returns the message the console says about it.
async function said(act) {
  const before = await page.locator("#flash").getAttribute("data-said");
  await act();
  await page.waitForFunction((n) => document.getElementById("flash").dataset.said !== n, before);
  return (await page.locator("#flash").textContent()).trim();
}

try {
  // Sign in: a wrong token is refused with a message, the right one opens the overview.
  await page.goto(`${base}/admin`);
  await page.getByLabel("Admin token").fill("not-the-token");
  await page.getByRole("button", { name: "Sign in" }).click();
  const refusal = page.locator(".login [role=alert]");
  await refusal.waitFor();
  seen.wrongToken = (await refusal.textContent()).trim();
  await shot("sign-in");
  await page.getByLabel("Admin token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#count-failed dd").waitFor();
  seen.failedCount = (await page.locator("#count-failed dd").textContent()).trim();
  seen.health = (await page.locator("#health .badge").first().textContent()).trim();
  const cookie = (await context.cookies()).find((c) => c.name === "floh_session");
  seen.cookie = { httpOnly: cookie?.httpOnly, sameSite: cookie?.sameSite };
  // The session alone does not make a change: without its CSRF token the API refuses.
  seen.changeWithoutCsrf = await page.evaluate(async () => {
    const response = await fetch("/api/admin/logging/purge", { method: "POST" });
    return response.status;
  });
  await shot("overview");

  // The failed job, from the overview's recent failures.
  await page.locator("section", { hasText: "Recent failures" }).getByRole("link", { name: failedJob }).click();
  await page.getByRole("heading", { name: `Job ${failedJob}` }).waitFor();
  seen.failedReason = (await page.locator("dd", { hasText: "no plugin" }).textContent()).trim();
  await shot("failed-job");

  // The plugin is in the folder now: reload, and it is listed as loaded.
  await page.getByRole("link", { name: "Plugins" }).click();
  seen.reloaded = await said(() => page.getByRole("button", { name: "Reload plugins" }).click());
  const hello = page.locator("tr", { hasText: "hello.wasm" });
  seen.helloStatus = (await hello.locator(".badge").textContent()).trim();
  await shot("plugins");

  // Retry the failed job and watch it complete.
  await page.goto(`${base}/admin#/job/${encodeURIComponent(failedJob)}`);
  seen.retried = await said(() => page.getByRole("button", { name: "Retry" }).click());
  await page.locator(".facts .badge.completed").waitFor({ timeout: 20_000 });
  seen.returnValue = JSON.parse(await page.locator("h2:text('Return value') + pre").textContent());
  await shot("retried-job");

  // Add a job by hand: an audit checkpoint, signed at once.
  await page.getByRole("link", { name: "Jobs" }).click();
  await page.getByLabel("Job type").fill("audit-checkpoint");
  seen.added = await said(() => page.getByRole("button", { name: "Add job" }).click());
  await page.locator(".facts .badge.completed").waitFor({ timeout: 20_000 });

  // Settings: an out-of-range timeout is refused with the API's message, a valid one is saved.
  await page.getByRole("link", { name: "Settings" }).click();
  const timeout = page.getByLabel("Stuck-run timeout (minutes)");
  await timeout.fill("1441");
  seen.rejected = await said(() => page.locator("#save-security").click());
  seen.rejectedKind = await page.locator("#flash").getAttribute("class");
  await timeout.fill("45");
  seen.saved = await said(() => page.locator("#save-security").click());
  await page.getByText("Now 45, set here").waitFor();
  await shot("settings");

  // Purge Now asks first; cancelling does nothing, confirming runs the purge job.
  await page.getByRole("button", { name: "Purge Now" }).click();
  await page.locator("dialog[open]").waitFor();
  seen.confirmation = (await page.locator("#confirm-text").textContent()).trim();
  await shot("purge-confirmation");
  await page.getByRole("button", { name: "Cancel" }).click();
  check(await page.getByRole("heading", { name: "Settings" }).isVisible(), "cancelling left the settings page");
  await page.getByRole("button", { name: "Purge Now" }).click();
  seen.purge = await said(() => page.locator("#confirm-ok").click());
  await page.locator(".facts .badge.completed").waitFor({ timeout: 20_000 });
  seen.purgeJobType = (await page.locator(".facts dd").first().textContent()).trim();
  // A finished job can be removed; that asks first too.
  await page.getByRole("button", { name: "Remove" }).click();
  seen.removed = await said(() => page.locator("#confirm-ok").click());

  // Jobs by state, schedules, and the audit log verified.
  await page.goto(`${base}/admin#/jobs/completed`);
  await page.locator("tbody tr").first().waitFor();
  seen.completedListed = await page.locator("tbody tr").count();
  await shot("jobs");
  await page.getByRole("link", { name: "Schedules" }).click();
  seen.synced = await said(() => page.getByRole("button", { name: "Sync schedules now" }).click());
  seen.schedulesListed = await page.locator("section, main").locator("tbody tr").count();
  await shot("schedules");
  await page.getByRole("link", { name: "Audit" }).click();
  await page.getByRole("button", { name: "Verify the log now" }).click();
  seen.verification = (await page.locator("#verification").textContent()).trim();
  seen.checkpointsListed = await page.locator("tbody tr").count();
  await shot("audit");

  // Signing out ends the page's access.
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("heading", { name: "Sign in to floh" }).waitFor();
  seen.afterSignOut = await page.evaluate(async () => (await fetch("/api/admin/queue")).status);
  seen.consoleErrors = consoleErrors;
  console.log(JSON.stringify(seen));
} catch (error) {
  await shot("failure").catch(() => {});
  console.error(`${error.stack}\nseen so far: ${JSON.stringify(seen)}\nbrowser console: ${consoleErrors.join("\n")}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
