// The floh console: a client of the admin API (/api/admin/*), signed in with a session cookie.
// Plain DOM, no framework; every text goes in through textContent, never as HTML.
"use strict";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const flash = document.getElementById("flash");
let csrfToken = null;
let rendering = 0;
let keepFlash = false;

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// --- building pages -------------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

function svg(tag, attrs = {}, ...children) {
  const element = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, value);
  for (const child of children) element.append(child instanceof Node ? child : String(child));
  return element;
}

const encode = encodeURIComponent;

function when(ms) {
  if (!ms) return "—";
  return new Date(ms).toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

function badge(text) {
  return h("span", { class: `badge ${text}` }, text);
}

function pre(value) {
  return h("pre", {}, JSON.stringify(value, null, 2));
}

function facts(...pairs) {
  return h("dl", { class: "facts" }, pairs.filter(Boolean).map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
}

/// A table of `rows`, one column per [heading, cell(row)]; `empty` when there are none.
function table(columns, rows, empty) {
  if (rows.length === 0) return h("p", { class: "muted" }, empty);
  return h(
    "table",
    {},
    h("thead", {}, h("tr", {}, columns.map(([heading]) => h("th", { scope: "col" }, heading)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, columns.map(([, cell]) => h("td", {}, cell(row)))))),
  );
}

function button(label, action, attrs = {}) {
  return h("button", { type: "button", ...attrs, onclick: () => run(action) }, label);
}

// --- talking to floh ------------------------------------------------------------------------

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch (e) {
    throw new ApiError(0, `floh did not answer (${e.message})`);
  }
  const text = await response.text();
  let value = null;
  try {
    value = text ? JSON.parse(text) : null;
  } catch {
    value = text;
  }
  if (response.status === 401 && path.startsWith("/api/admin/")) {
    showLogin("Your session has ended; sign in again.");
    throw new ApiError(401, "signed out");
  }
  if (!response.ok) {
    throw new ApiError(response.status, value?.error ?? `${response.status} ${response.statusText}`);
  }
  return value;
}

/// The health report, which is also an answer when floh is degraded (503).
async function health() {
  try {
    const response = await fetch("/api/health", { headers: { Accept: "application/json" } });
    return await response.json();
  } catch (e) {
    return { status: "unreachable", checks: {}, error: e.message };
  }
}

function say(message, kind = "ok") {
  flash.textContent = message;
  flash.className = kind;
  flash.setAttribute("role", kind === "error" ? "alert" : "status");
  flash.hidden = false;
  flash.dataset.said = Number(flash.dataset.said ?? 0) + 1;
}

/// Runs an operator's action; its failure is said, never swallowed.
async function run(action) {
  try {
    await action();
  } catch (e) {
    if (e.status !== 401) say(e.message, "error");
  }
}

function confirmThen(text, action) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  dialog.returnValue = "";
  dialog.addEventListener("close", () => dialog.returnValue === "ok" && run(action), { once: true });
  dialog.showModal();
}

// --- signing in -----------------------------------------------------------------------------

function showLogin(message) {
  csrfToken = null;
  nav.hidden = true;
  flash.hidden = true;
  const token = h("input", { type: "password", id: "token", name: "token", autocomplete: "current-password", required: true });
  const problem = h("p", { class: "error", role: "alert", hidden: !message }, message ?? "");
  const form = h(
    "form",
    {
      class: "login",
      onsubmit: async (event) => {
        event.preventDefault();
        try {
          signedIn(await api("POST", "/admin/login", { token: token.value }));
        } catch (e) {
          problem.textContent = e.message;
          problem.hidden = false;
        }
      },
    },
    h("h1", {}, "Sign in to floh"),
    h("label", { for: "token" }, "Admin token (ADMIN_TOKEN)"),
    token,
    problem,
    h("button", { type: "submit" }, "Sign in"),
  );
  main.replaceChildren(form);
  token.focus();
}

function signedIn(session) {
  csrfToken = session.csrfToken;
  nav.hidden = false;
  render();
}

// --- pages ----------------------------------------------------------------------------------

async function overview() {
  const [report, queue, failures, listing, activity] = await Promise.all([
    health(),
    api("GET", "/api/admin/queue"),
    api("GET", "/api/admin/jobs?state=failed&perPage=5"),
    api("GET", "/api/admin/plugins"),
    api("GET", "/api/admin/queue/activity?hours=24"),
  ]);
  const checks = Object.entries(report.checks ?? {}).map(([name, check]) =>
    h("li", {}, `${name}: `, badge(check.status), check.latencyMs !== undefined ? ` ${check.latencyMs} ms` : "", check.error ? ` — ${check.error}` : ""),
  );
  const failed = listing.plugins.filter((p) => p.status !== "loaded").length;
  return [
    h("h1", {}, "Overview"),
    h(
      "section",
      { class: "cards" },
      h("div", { class: "card", id: "health" }, h("h2", {}, "Health"), badge(report.status), h("ul", {}, checks)),
      h("div", { class: "card", id: "queue" }, h("h2", {}, "Queue"), counts(queue)),
      h(
        "div",
        { class: "card", id: "plugin-status" },
        h("h2", {}, "Plugins"),
        h("p", {}, h("a", { href: "#/plugins" }, `${listing.plugins.length - failed} loaded`), failed ? [", ", h("span", { class: "error" }, `${failed} failed to load`)] : ""),
      ),
    ),
    h("section", {}, h("h2", {}, "Finished jobs per hour, last 24 hours"), chart(activity.hours)),
    h("section", {}, h("h2", {}, "Recent failures"), jobTable(failures.jobs, "No failed jobs.")),
  ];
}

function counts(queue) {
  return h(
    "dl",
    { class: "counts" },
    Object.entries(queue.counts).map(([state, count]) =>
      h("div", { id: `count-${state}` }, h("dt", {}, h("a", { href: `#/jobs/${state}` }, state)), h("dd", {}, count)),
    ),
    h("div", {}, h("dt", {}, "workers"), h("dd", {}, queue.workers)),
    queue.paused ? h("p", { class: "error" }, "The queue is paused.") : "",
  );
}

/// Bars of completed (and stacked on them, failed) jobs per hour.
function chart(hours) {
  const width = 720, height = 160, bottom = 20, top = 14;
  const peak = Math.max(1, ...hours.map((hour) => hour.completed + hour.failed));
  const step = width / hours.length;
  const scale = (n) => (n / peak) * (height - bottom - top);
  const plot = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-label": "completed and failed jobs per hour" });
  plot.append(svg("text", { x: 4, y: 11, class: "axis" }, `peak ${peak} per hour`));
  plot.append(svg("line", { x1: 0, x2: width, y1: height - bottom, y2: height - bottom, class: "baseline" }));
  hours.forEach((hour, i) => {
    const x = i * step + 2;
    const done = scale(hour.completed), failed = scale(hour.failed);
    const base = height - bottom;
    const label = `${when(hour.start).slice(11, 16)}: ${hour.completed} completed, ${hour.failed} failed`;
    const group = svg("g", {}, svg("title", {}, label));
    group.append(svg("rect", { x, y: base - done, width: step - 4, height: done, class: "completed" }));
    group.append(svg("rect", { x, y: base - done - failed, width: step - 4, height: failed, class: "failed" }));
    if (i % 6 === 0) group.append(svg("text", { x, y: height - 5, class: "axis" }, when(hour.start).slice(11, 16)));
    plot.append(group);
  });
  const legend = h("p", { class: "legend" }, h("span", { class: "key completed" }), "completed ", h("span", { class: "key failed" }), "failed (UTC hours; as far as the queue keeps finished jobs)");
  return [plot, legend];
}

function jobTable(jobs, empty) {
  return table(
    [
      ["Job", (job) => h("a", { href: `#/job/${encode(job.id)}` }, job.id)],
      ["Type", (job) => job.name],
      ["Attempts", (job) => job.attemptsMade],
      ["Added", (job) => when(job.timestamp)],
      ["Finished", (job) => when(job.finishedOn)],
      ["Failed reason", (job) => job.failedReason ?? ""],
    ],
    jobs,
    empty,
  );
}

const PER_PAGE = 25;

async function jobs(state = "failed", page = "1") {
  const number = Math.max(1, Number(page) || 1);
  const [queue, listing, plugins] = await Promise.all([
    api("GET", "/api/admin/queue"),
    api("GET", `/api/admin/jobs?state=${encode(state)}&page=${number}&perPage=${PER_PAGE}`),
    api("GET", "/api/admin/plugins"),
  ]);
  const filter = h(
    "select",
    { id: "state", onchange: (event) => (location.hash = `#/jobs/${event.target.value}`) },
    Object.entries(queue.counts).map(([name, count]) => h("option", { value: name, selected: name === state }, `${name} (${count})`)),
  );
  const pager = h(
    "p",
    { class: "pager" },
    number > 1 ? h("a", { href: `#/jobs/${state}/${number - 1}` }, "← newer") : "",
    listing.jobs.length === PER_PAGE ? h("a", { href: `#/jobs/${state}/${number + 1}` }, "older →") : "",
  );
  return [
    h("h1", {}, "Jobs"),
    h("p", {}, h("label", { for: "state" }, "State "), filter),
    jobTable(listing.jobs, `No ${state} jobs.`),
    pager,
    addJob(plugins.plugins.map((p) => p.name).filter(Boolean)),
  ];
}

function addJob(types) {
  const name = h("input", { id: "job-type", list: "job-types", required: true });
  const data = h("textarea", { id: "job-data", rows: 3 }, "{}");
  const delay = h("input", { id: "job-delay", type: "number", min: 0, value: 0 });
  const submit = async (event) => {
    event.preventDefault();
    await run(async () => {
      let parsed;
      try {
        parsed = JSON.parse(data.value || "{}");
      } catch (e) {
        throw new Error(`Data is not JSON: ${e.message}`);
      }
      const body = { name: name.value, data: parsed };
      if (Number(delay.value) > 0) body.delay = Number(delay.value) * 1000;
      const added = await api("POST", "/api/admin/jobs", body);
      say(`Job ${added.id} (${added.name}) added.`);
      go(`#/job/${encode(added.id)}`);
    });
  };
  return h(
    "form",
    { class: "panel", onsubmit: submit },
    h("h2", {}, "Add a job"),
    h("datalist", { id: "job-types" }, types.map((type) => h("option", { value: type }))),
    h("label", { for: "job-type" }, "Job type"),
    name,
    h("label", { for: "job-data" }, "Data (JSON)"),
    data,
    h("label", { for: "job-delay" }, "Delay (seconds)"),
    delay,
    h("button", { type: "submit" }, "Add job"),
  );
}

const UNFINISHED = ["waiting", "active", "delayed", "prioritized", "waiting-children"];

async function job(id) {
  const job = await api("GET", `/api/admin/jobs/${encode(id)}`);
  const path = `/api/admin/jobs/${encode(id)}`;
  const retry = async () => {
    await api("POST", `${path}/retry`);
    say(`Job ${id} is back in the queue.`);
    await render();
  };
  const remove = async () => {
    await api("DELETE", path);
    say(`Job ${id} removed.`);
    go(`#/jobs/${job.state}`);
  };
  if (UNFINISHED.includes(job.state)) {
    const here = location.hash;
    setTimeout(() => location.hash === here && render(), 1000);
  }
  return [
    h("h1", {}, `Job ${id}`),
    facts(
      ["Type", job.name],
      ["State", badge(job.state)],
      ["Attempts made", job.attemptsMade],
      ["Added", when(job.timestamp)],
      ["Started", when(job.processedOn)],
      ["Finished", when(job.finishedOn)],
      job.failedReason && ["Failed reason", job.failedReason],
    ),
    h(
      "p",
      { class: "actions" },
      job.state === "failed" ? button("Retry", retry, { id: "retry" }) : "",
      job.state !== "active" ? button("Remove", () => confirmThen(`Remove job ${id} from the queue?`, remove), { id: "remove", class: "danger" }) : "",
    ),
    h("h2", {}, "Data"),
    pre(job.data),
    h("h2", {}, "Options"),
    pre(job.opts),
    job.returnvalue !== null && job.returnvalue !== undefined ? [h("h2", {}, "Return value"), pre(job.returnvalue)] : "",
    job.stacktrace.length ? [h("h2", {}, "Failure traces, newest last"), job.stacktrace.map((trace) => h("pre", { class: "trace" }, trace))] : "",
  ];
}

async function plugins() {
  const listing = await api("GET", "/api/admin/plugins");
  const reload = async () => {
    const reloaded = await api("POST", "/api/admin/plugins/reload");
    const failed = reloaded.plugins.filter((p) => p.status !== "loaded").length;
    say(`Plugins reloaded: ${reloaded.plugins.length - failed} loaded, ${failed} failed.`, failed ? "error" : "ok");
    await render();
  };
  return [
    h("h1", {}, "Plugins"),
    h("p", {}, "From ", h("code", {}, listing.dir), " ", button("Reload plugins", reload, { id: "reload" })),
    table(
      [
        ["Job type", (p) => p.name ?? "—"],
        ["Version", (p) => p.version ?? "—"],
        ["File", (p) => p.file],
        ["SHA-256", (p) => h("code", { title: p.sha256 }, p.sha256.slice(0, 12))],
        ["Status", (p) => badge(p.status)],
        ["Loaded", (p) => (p.loaded_at ? when(Date.parse(p.loaded_at)) : "—")],
        ["Grants", (p) => p.grants.join(", ")],
        ["Last error", (p) => (p.error ? h("span", { class: "error" }, p.error) : "")],
      ],
      listing.plugins,
      "No plugin files in the folder.",
    ),
  ];
}

async function schedules() {
  const listing = await api("GET", "/api/admin/schedules");
  const sync = async () => {
    const report = await api("POST", "/api/admin/schedules/sync");
    say(`Schedules synced: ${report.created.length} created, ${report.updated.length} updated, ${report.removed.length} removed.`);
    await render();
  };
  const common = [
    ["Schedule", (s) => s.id],
    ["Job type", (s) => s.job_name],
    ["Pattern", (s) => h("code", {}, s.pattern)],
    ["Time zone", (s) => s.tz],
  ];
  return [
    h("h1", {}, "Schedules"),
    h("p", {}, button("Sync schedules now", sync, { id: "sync" })),
    listing.problems.length ? h("ul", { class: "error" }, listing.problems.map((p) => h("li", {}, p))) : "",
    h("h2", {}, "In the queue"),
    table([...common, ["Next run", (s) => when(s.next)]], listing.stored, "No job schedulers in the queue."),
    h("h2", {}, "Planned by floh"),
    table([...common, ["From", (s) => s.source]], listing.planned, "Nothing is planned."),
  ];
}

/// A form for one group of settings: a number field per setting, saved with PUT.
function settingsForm(title, path, values, fields) {
  const inputs = fields.map(([key, label, hint]) => [key, label, hint, h("input", { id: key, name: key, inputmode: "numeric", value: values[key].value })]);
  const save = async (event) => {
    event.preventDefault();
    await run(async () => {
      const body = Object.fromEntries(inputs.map(([key, , , input]) => [key, /^\d+$/.test(input.value) ? Number(input.value) : input.value]));
      await api("PUT", path, body);
      say(`${title} saved.`);
      await render();
    });
  };
  return h(
    "form",
    { class: "panel", onsubmit: save, novalidate: true },
    h("h2", {}, title),
    inputs.map(([key, label, hint, input]) => [
      h("label", { for: key }, label),
      input,
      h("p", { class: "muted" }, `${hint} Now ${values[key].value}, ${values[key].source === "admin" ? "set here" : "from the configuration"}.`),
    ]),
    h("button", { type: "submit", id: `save-${title.toLowerCase()}` }, "Save"),
  );
}

async function settings() {
  const [security, logging] = await Promise.all([api("GET", "/api/admin/settings/security"), api("GET", "/api/admin/settings/logging")]);
  const days = logging.log_retention_days.value;
  const purge = async () => {
    const job = await api("POST", "/api/admin/logging/purge");
    say(`Purge started as job ${job.id}.`);
    go(`#/job/${encode(job.id)}`);
  };
  return [
    h("h1", {}, "Settings"),
    settingsForm("Security", "/api/admin/settings/security", security, [
      ["stuck_run_timeout_minutes", "Stuck-run timeout (minutes)", "Workflow runs without progress for this long are failed by stuck-run-recovery; 1–1440."],
    ]),
    settingsForm("Logging", "/api/admin/settings/logging", logging, [
      ["log_retention_days", "Log retention (days)", "log-retention deletes system log entries older than this; 1–36500."],
    ]),
    h(
      "section",
      { class: "panel" },
      h("h2", {}, "Purge logs now"),
      h("p", {}, `Deletes system log entries older than ${days} days right away, instead of waiting for the nightly run.`),
      button("Purge Now", () => confirmThen(`Delete system log entries older than ${days} days now?`, purge), { id: "purge", class: "danger" }),
    ),
  ];
}

const verifyNow = () => (location.hash === "#/audit/verify" ? render() : (location.hash = "#/audit/verify"));

async function audit(verify) {
  const status = await api("GET", `/api/admin/audit${verify ? "?verify=true" : ""}`);
  const result = status.verification;
  return [
    h("h1", {}, "Audit"),
    facts(
      ["Entries", status.entries],
      ["Since the last checkpoint", status.entriesSinceCheckpoint],
      ["Checkpoint store", status.store],
      ["Signing key", h("code", {}, status.keyId)],
    ),
    h("p", {}, button("Verify the log now", verifyNow, { id: "verify" })),
    result
      ? h("p", { id: "verification", class: result.intact ? "ok" : "error", role: "status" }, result.intact ? `Intact: ${result.summary}` : `Tampered: ${result.problem}`)
      : "",
    h("h2", {}, "Recent checkpoints"),
    table(
      [
        ["Entries", (c) => `${c.firstSeq}–${c.lastSeq}`],
        ["Store", (c) => c.store],
        ["Location", (c) => h("code", {}, c.location)],
        ["Signed", (c) => when(Date.parse(c.createdAt))],
      ],
      status.checkpoints,
      "No checkpoint yet.",
    ),
  ];
}

const PAGES = { overview, jobs, job, plugins, schedules, settings, audit };

async function render() {
  if (!csrfToken) return;
  const ticket = ++rendering;
  const [name, ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  const page = PAGES[name] ? name : "overview";
  for (const link of nav.querySelectorAll("a")) {
    link.toggleAttribute("aria-current", link.getAttribute("href") === `#/${page === "job" ? "jobs" : page}`);
  }
  try {
    const content = await PAGES[page](...rest.map(decodeURIComponent));
    if (ticket === rendering) main.replaceChildren(...[content].flat(Infinity).filter((c) => c !== ""));
  } catch (e) {
    if (e.status !== 401 && ticket === rendering) main.replaceChildren(h("p", { class: "error", role: "alert" }, e.message));
  }
}

/// Opens `hash` after an action, keeping what was said about it on screen.
function go(hash) {
  keepFlash = true;
  location.hash = hash;
}

// A message goes with the operator's next navigation.
window.addEventListener("hashchange", () => {
  if (!keepFlash) flash.hidden = true;
  keepFlash = false;
  render();
});

document.getElementById("sign-out").addEventListener("click", async () => {
  await api("POST", "/admin/logout").catch(() => {});
  showLogin("Signed out.");
});

api("GET", "/admin/session").then(signedIn, () => showLogin());
