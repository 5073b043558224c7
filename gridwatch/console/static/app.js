// The operator console: one page, no build step. It talks to the console API (docs: the API contract of
// issue 10) with the session cookie and sends the CSRF token on every state-changing request.
// Every string from the server is put on the page as text (textContent), never parsed as HTML.

import { LANGUAGES, applyLabels, initialLanguage, language, setLanguage, t } from "./i18n.js";

// Which roles see which view (the API answers 403 to the others anyway).
const VIEWS = {
  alerts: ["operator", "staff"],
  alert: ["operator", "staff"],
  sources: ["operator", "integrator", "admin"],
  duty: ["operator", "staff", "integrator", "admin"],
  status: ["admin", "integrator"],
  registries: ["registrar", "admin"],
  persons: ["registrar", "admin"],
  import: ["registrar", "admin"],
  audit: ["auditor"],
  users: ["admin"],
};
const NAV_ORDER = ["alerts", "sources", "duty", "status", "registries", "audit", "users"];
const STATES = ["pending_confirmation", "open", "notified", "escalated", "acknowledged", "resolved"];
const OUTCOMES = ["assisted", "person_ok", "false_match", "not_found", "other"];
const EVIDENCE_PARTS = ["face", "frame", "reference"];
const QUEUE_LIMIT = 200;
const IMPORT_POLL_MS = 500;
const SOUND_KEY = "gridwatch.sound";

const session = {
  me: null,
  csrf: null, // kept in memory only: a reload asks GET /api/me for it again
  timezone: Intl.DateTimeFormat().resolvedOptions().timeZone,
};
// streamed: the items the live feed brought while a list request was under way (newer than its answer).
const queue = { alerts: new Map(), state: "", loads: 0, streamed: null };
let stream = null;
let currentRoute = { view: null, args: [] };
let renderCurrent = () => {};
let importPoll = null;
// The evidence of the alert on screen, kept across re-renders: each image is fetched (and audited) once.
let evidenceShown = { key: null, node: null };

// --- small helpers ------------------------------------------------------------------------------------

const $ = (selector, root = document) => root.querySelector(selector);

// An element with attributes and children; strings become text nodes (never HTML).
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") node.textContent = String(value);
    else if (name === "className") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (value === true) node.setAttribute(name, "");
    else node.setAttribute(name, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function formatTime(iso) {
  if (!iso) return "–";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  const locale = language() === "zh" ? "zh-CN" : "en-GB";
  const options = {
    year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  };
  try {
    return new Intl.DateTimeFormat(locale, { ...options, timeZone: session.timezone }).format(date);
  } catch {
    return new Intl.DateTimeFormat(locale, options).format(date); // an unknown zone name: the browser's
  }
}

function joined(...values) {
  return values.filter((value) => value !== null && value !== undefined && value !== "").join(" · ") || "–";
}

function formatScore(value) {
  return typeof value === "number" ? value.toFixed(3) : "–";
}

function detailOf(data, status) {
  if (data && typeof data.detail === "string") return data.detail;
  if (data && Array.isArray(data.detail)) return data.detail.map((item) => item.msg || JSON.stringify(item)).join("; ");
  return String(status);
}

function hasRole(view) {
  return Boolean(session.me) && (VIEWS[view] || []).includes(session.me.role);
}

// --- the API ------------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, data, headers = null) {
    super(detailOf(data, status));
    this.status = status;
    this.data = data;
    this.headers = headers;
  }
}

async function api(path, { method = "GET", json, form, allowUnauthorized = false } = {}) {
  const headers = { Accept: "application/json" };
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = form; // the browser sets the multipart boundary
  }
  if (method !== "GET" && method !== "HEAD" && session.csrf) headers["X-CSRF-Token"] = session.csrf;
  const response = await fetch(path, { method, headers, body, credentials: "same-origin", cache: "no-store" });
  let data = null;
  if (response.status !== 204) {
    const type = response.headers.get("Content-Type") || "";
    data = type.includes("json") ? await response.json().catch(() => null) : await response.text();
  }
  if (response.status === 401 && !allowUnauthorized) {
    signedOut(session.me ? t("signin.expired") : "");
    throw new ApiError(401, data);
  }
  if (!response.ok) throw new ApiError(response.status, data, response.headers);
  return { status: response.status, data, headers: response.headers };
}

// --- sign-in ------------------------------------------------------------------------------------------

function showSignIn(message = "") {
  for (const view of document.querySelectorAll("section.view")) view.hidden = true;
  $("#signin-view").hidden = false;
  $("#nav").hidden = true;
  $("#whoami").hidden = true;
  $("#signout").hidden = true;
  $("#live").hidden = true;
  $("#sound-option").hidden = true;
  const error = $("[data-testid=signin-error]");
  error.textContent = message;
  error.hidden = !message;
  $("[data-testid=signin-username]").focus();
}

function signedOut(message = "") {
  session.me = null;
  session.csrf = null;
  stopStream();
  stopImportPoll();
  queue.alerts.clear();
  $("#queue").replaceChildren();
  showSignIn(message);
}

async function signIn(event) {
  event.preventDefault();
  const form = event.target;
  const button = $("[data-testid=signin-submit]");
  button.disabled = true;
  try {
    const { data } = await api("/api/session", {
      method: "POST",
      json: { username: form.username.value, password: form.password.value },
      allowUnauthorized: true,
    });
    form.password.value = "";
    session.csrf = data.csrf;
    await signedIn(data.user);
  } catch (error) {
    if (error.status === 401) showSignIn(t("signin.invalid"));
    else if (error.status === 429) {
      showSignIn(t("signin.limited", { seconds: error.headers?.get("Retry-After") || "60" }));
    } else showSignIn(t("signin.failed", { status: error.status ?? error.message }));
  } finally {
    button.disabled = false;
  }
}

async function signOut() {
  try {
    await api("/api/session", { method: "DELETE", allowUnauthorized: true });
  } catch {
    // signed out on the server already, or unreachable: forget the session here either way
  }
  signedOut();
}

async function signedIn(user) {
  // GET /api/me gives the site's time zone (when the service tells it) and the CSRF token after a reload.
  let me = user;
  try {
    const { data } = await api("/api/me");
    me = { ...user, ...data };
  } catch (error) {
    if (error.status === 401) return;
  }
  session.me = me;
  if (me.csrf) session.csrf = me.csrf;
  if (typeof me.timezone === "string" && me.timezone) session.timezone = me.timezone;
  $("#signin-view").hidden = true;
  $("#nav").hidden = false;
  for (const link of document.querySelectorAll("#nav a")) link.hidden = !hasRole(link.dataset.view);
  $("#signout").hidden = false;
  renderWhoami();
  const watchesAlerts = hasRole("alerts");
  $("#sound-option").hidden = !watchesAlerts;
  if (watchesAlerts) startStream();
  // A link into a view this role may see is kept (deep links survive the sign-in); else the role's first view.
  const first = NAV_ORDER.find(hasRole);
  const wanted = parseHash().view;
  if (first && !hasRole(wanted) && location.hash !== `#/${first}`) location.hash = `#/${first}`;
  else route();
}

function renderWhoami() {
  const whoami = $("#whoami");
  if (!session.me) return;
  whoami.textContent = `${session.me.name} · ${t(`role.${session.me.role}`)}`;
  whoami.hidden = false;
  $("#tz-note").textContent = t("tz.note", { zone: session.timezone });
}

// --- routing ------------------------------------------------------------------------------------------

function decodePart(part) {
  try {
    return decodeURIComponent(part);
  } catch {
    return part; // a malformed escape typed by hand: taken as it is
  }
}

function parseHash() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodePart);
  if (parts[0] === "alerts" && parts[1]) return { view: "alert", args: [parts[1]] };
  if (parts[0] === "registries" && parts[1] && parts[2] === "import") return { view: "import", args: [parts[1]] };
  if (parts[0] === "registries" && parts[1]) return { view: "persons", args: [parts[1]] };
  return { view: parts[0] || "", args: [] };
}

function route() {
  if (!session.me) return;
  const { view, args } = parseHash();
  const target = VIEWS[view] ? view : NAV_ORDER.find(hasRole);
  if (view !== "import") stopImportPoll();
  for (const section of document.querySelectorAll("section.view")) section.hidden = true;
  for (const link of document.querySelectorAll("#nav a")) {
    const active = link.dataset.view === target || (link.dataset.view === "alerts" && target === "alert")
      || (link.dataset.view === "registries" && (target === "persons" || target === "import"));
    link.classList.toggle("active", active);
  }
  currentRoute = { view: target, args };
  if (!target) return;
  const section = $(`#view-${target}`);
  section.hidden = false;
  if (!hasRole(target)) {
    section.replaceChildren(el("p", { className: "error", text: t("error.forbidden") }));
    renderCurrent = () => {};
    return;
  }
  const renderers = {
    alerts: renderQueue, alert: loadAlert, sources: loadSources, duty: loadDuty, status: loadStatus,
    registries: loadRegistries, persons: loadPersons, import: renderImport, audit: loadAudit, users: loadUsers,
  };
  renderCurrent = () => renderers[target](section, ...args);
  if (target === "alerts") loadQueue();
  else renderCurrent();
}

function loadError(section, error) {
  const message = error.status === 403 ? t("error.forbidden") : t("error.load", { status: error.status ?? error.message });
  section.replaceChildren(el("p", { className: "error", "data-testid": "load-error", text: message }));
}

function table(testid, columns, rows, emptyKey) {
  if (!rows.length) return el("p", { className: "empty", text: t(emptyKey) });
  return el("table", { "data-testid": testid },
    el("thead", {}, el("tr", {}, columns.map(([key]) => el("th", { text: t(key) })))),
    el("tbody", {}, rows.map((row) => el("tr", {}, columns.map(([, cell]) => el("td", {}, cell(row)))))));
}

// --- the alert queue and its live feed ----------------------------------------------------------------

function upsertAlert(item) {
  if (!item || typeof item.alert_id !== "string") return false;
  const known = queue.alerts.has(item.alert_id);
  queue.alerts.set(item.alert_id, { ...queue.alerts.get(item.alert_id), ...item });
  if (queue.alerts.size > QUEUE_LIMIT) {
    const oldest = [...queue.alerts.values()].sort(byNewest).slice(QUEUE_LIMIT);
    for (const old of oldest) queue.alerts.delete(old.alert_id);
  }
  return !known;
}

function byNewest(a, b) {
  return String(b.created_at).localeCompare(String(a.created_at));
}

async function loadQueue() {
  const section = $("#view-alerts");
  const error = $("[data-testid=queue-error]", section);
  const query = new URLSearchParams({ limit: "100" });
  if (queue.state) query.set("state", queue.state);
  const load = ++queue.loads;
  const streamed = new Map();
  queue.streamed = streamed;
  $("#queue").setAttribute("aria-busy", "true");
  try {
    const { data } = await api(`/api/alerts?${query}`);
    if (load !== queue.loads) return; // a newer load is under way: its answer wins
    queue.alerts.clear();
    for (const item of data.alerts || []) upsertAlert(item);
    // The list was read before these arrived on the feed: they are newer than the list's copy.
    for (const item of streamed.values()) upsertAlert(item);
    error.hidden = true;
  } catch (failure) {
    if (failure.status === 401 || load !== queue.loads) return;
    error.textContent = t("error.load", { status: failure.status ?? failure.message });
    error.hidden = false;
  } finally {
    if (load === queue.loads) {
      queue.streamed = null;
      $("#queue").setAttribute("aria-busy", "false");
    }
  }
  renderQueue();
}

function renderStateFilter() {
  const select = $("#queue-state");
  const options = [el("option", { value: "", text: t("queue.filter.all") }),
    ...STATES.map((state) => el("option", { value: state, text: t(`state.${state}`) }))];
  select.replaceChildren(...options);
  select.value = queue.state;
}

function queueRow(item) {
  const severity = ["info", "warning", "critical"].includes(item.severity) ? item.severity : "info";
  return el("li", {
    className: `alert-row severity-${severity} state-${item.state}`,
    "data-testid": "alert-row",
    "data-alert-id": item.alert_id,
    "data-severity": severity,
    "data-state": item.state,
  },
  el("a", { href: `#/alerts/${encodeURIComponent(item.alert_id)}`, "data-testid": "alert-open" },
    el("span", { className: "badge", "data-testid": "alert-severity", text: t(`severity.${severity}`) }),
    el("time", { dateTime: item.created_at, "data-testid": "alert-time", text: formatTime(item.created_at) }),
    el("span", { className: "rule", "data-testid": "alert-rule", text: item.rule }),
    el("span", { className: "who", "data-testid": "alert-person", text: joined(item.person_id, item.registry) }),
    el("span", { className: "where", "data-testid": "alert-source", text: joined(item.source, item.grid) }),
    el("span", { className: "score", text: formatScore(item.similarity) }),
    el("span", { className: "state", "data-testid": "alert-state", text: t(`state.${item.state}`) })));
}

function renderQueue() {
  const section = $("#view-alerts");
  renderStateFilter();
  renderWhoami();
  const items = [...queue.alerts.values()]
    .filter((item) => !queue.state || item.state === queue.state)
    .sort(byNewest);
  $("#queue").replaceChildren(...items.map(queueRow));
  $("[data-testid=queue-empty]", section).hidden = items.length > 0;
}

function setLive(state) {
  const live = $("#live");
  live.hidden = false;
  live.dataset.state = state;
  live.textContent = t(`live.${state}`);
}

function startStream() {
  stopStream();
  setLive("connecting");
  let interrupted = false;
  const source = new EventSource("/api/alerts/stream", { withCredentials: false });
  stream = source;
  source.addEventListener("open", () => {
    setLive("on");
    // Alerts raised while the feed was down: the list has them.
    if (interrupted && currentRoute.view === "alerts") loadQueue();
    interrupted = false;
  });
  source.addEventListener("error", async () => {
    interrupted = true;
    setLive("off");
    if (source.readyState === EventSource.CLOSED) {
      // The browser gave up (e.g. 401 after the session ended): find out whether we are still signed in.
      try {
        await api("/api/me");
        setTimeout(() => { if (stream === source) startStream(); }, 3000);
      } catch {
        // api() showed the sign-in form on 401
      }
    }
  });
  source.addEventListener("alert", (event) => onStreamItem(event, true));
  source.addEventListener("case", (event) => onStreamItem(event, false));
}

function stopStream() {
  if (stream) stream.close();
  stream = null;
}

function onStreamItem(event, isNew) {
  let item;
  try {
    item = JSON.parse(event.data);
  } catch {
    return;
  }
  if (queue.streamed) queue.streamed.set(item.alert_id, { ...queue.streamed.get(item.alert_id), ...item });
  const added = upsertAlert(item);
  if (isNew && added && item.severity === "critical" && $("#sound").checked) beep();
  if (currentRoute.view === "alerts") renderQueue();
  else if (currentRoute.view === "alert" && currentRoute.args[0] === item.alert_id) renderCurrent();
}

// A short generated tone (no audio file): two beeps at 880 Hz.
let audio = null;
function beep() {
  try {
    audio = audio || new AudioContext();
    const start = audio.currentTime;
    for (const offset of [0, 0.25]) {
      const tone = audio.createOscillator();
      const gain = audio.createGain();
      tone.type = "square";
      tone.frequency.value = 880;
      gain.gain.setValueAtTime(0.15, start + offset);
      gain.gain.exponentialRampToValueAtTime(0.001, start + offset + 0.18);
      tone.connect(gain).connect(audio.destination);
      tone.start(start + offset);
      tone.stop(start + offset + 0.2);
    }
  } catch {
    // no audio output on this machine
  }
}

// --- alert detail -------------------------------------------------------------------------------------

async function loadAlert(section, alertId) {
  let item;
  try {
    ({ data: item } = await api(`/api/alerts/${encodeURIComponent(alertId)}`));
  } catch (error) {
    if (error.status === 404) {
      section.replaceChildren(backLink(), el("p", { className: "error", "data-testid": "alert-notfound", text: t("alert.notfound") }));
    } else if (error.status !== 401) loadError(section, error);
    return;
  }
  if (currentRoute.view !== "alert" || currentRoute.args[0] !== alertId) return; // the user moved on
  upsertAlert(item);
  renderAlert(section, item);
}

function backLink() {
  return el("a", { href: "#/alerts", className: "back", "data-testid": "alert-back", text: t("alert.back") });
}

function renderAlert(section, item) {
  // A live update re-renders the detail: the comment being typed keeps its text and the focus.
  const kept = section.querySelector("[data-testid=action-comment-text]");
  const draft = kept ? kept.value : "";
  const typing = Boolean(kept) && document.activeElement === kept;
  const fields = [
    ["alert.rule", item.rule], ["alert.kind", item.kind],
    ["alert.severity", t(`severity.${item.severity}`)], ["alert.state", t(`state.${item.state}`)],
    ["alert.time", formatTime(item.created_at)], ["alert.person", item.person_id],
    ["alert.registry", item.registry], ["alert.source", `${item.source} (${item.source_kind})`],
    ["alert.grid", item.grid], ["alert.score", formatScore(item.similarity)],
    ["alert.threshold", formatScore(item.threshold)], ["alert.level", item.level],
    ["alert.acked_by", item.acked_by || "–"], ["alert.recipients", (item.recipients || []).join(", ") || "–"],
    ["alert.confirmations", item.confirmations],
  ];
  const testids = { "alert.score": "alert-score", "alert.threshold": "alert-threshold", "alert.state": "alert-state",
    "alert.time": "alert-time" };
  section.replaceChildren(
    backLink(),
    el("h2", { className: `severity-${item.severity}`, text: t("alert.title", { id: item.alert_id }) }),
    el("div", { className: "detail" },
      el("div", {},
        el("dl", { className: "fields" }, fields.map(([key, value]) => [
          el("dt", { text: t(key) }),
          el("dd", { "data-testid": testids[key] || null, text: value ?? "–" }),
        ])),
        el("h3", { text: t("alert.explanation") }),
        el("p", { className: "explanation", "data-testid": "alert-explanation", text: item.explanation || "–" }),
        renderActions(item, draft)),
      el("div", {}, renderEvidence(item), renderTimeline(item.timeline || []))));
  if (typing) {
    const comment = section.querySelector("[data-testid=action-comment-text]");
    comment.focus();
    comment.setSelectionRange(draft.length, draft.length);
  }
}

function renderEvidence(item) {
  const key = `${item.alert_id}|${item.has_evidence}|${language()}`;
  if (evidenceShown.key === key) return evidenceShown.node;
  const box = el("div", { className: "evidence", "data-testid": "evidence" }, el("h3", { text: t("alert.evidence") }));
  if (!item.has_evidence) {
    box.append(el("p", { className: "empty", "data-testid": "evidence-none", text: t("alert.evidence.none") }));
    evidenceShown = { key, node: box };
    return box;
  }
  for (const part of EVIDENCE_PARTS) {
    const figure = el("figure", { "data-testid": `evidence-${part}`, hidden: true });
    const image = el("img", {
      src: `/api/alerts/${encodeURIComponent(item.alert_id)}/evidence?part=${part}`,
      alt: t(`alert.evidence.${part}`),
      loading: "eager",
    });
    // Shown once it loads; a part that is not kept (404) stays hidden.
    image.addEventListener("load", () => { figure.hidden = false; });
    image.addEventListener("error", () => { figure.hidden = true; });
    figure.append(image, el("figcaption", { text: t(`alert.evidence.${part}`) }));
    box.append(figure);
  }
  evidenceShown = { key, node: box };
  return box;
}

function renderTimeline(timeline) {
  const box = el("div", { className: "timeline" }, el("h3", { text: t("alert.timeline") }));
  if (!timeline.length) {
    box.append(el("p", { className: "empty", "data-testid": "timeline-empty", text: t("alert.timeline.empty") }));
  }
  const entries = [...timeline].sort((a, b) => String(a.at).localeCompare(String(b.at)));
  box.append(el("ol", { "data-testid": "timeline" }, entries.map((entry) => {
    const facts = [];
    if (entry.actor) facts.push(t("timeline.by", { actor: entry.actor }));
    if (entry.channel) facts.push(t("timeline.via", { channel: entry.channel }));
    if (entry.level !== null && entry.level !== undefined && entry.type !== "commented") {
      facts.push(t("timeline.level", { level: entry.level }));
    }
    if (entry.recipients && entry.recipients.length) facts.push(t("timeline.to", { recipients: entry.recipients.join(", ") }));
    if (entry.outcome) facts.push(t("timeline.outcome", { outcome: t(`outcome.${entry.outcome}`) }));
    return el("li", { className: `entry type-${entry.type}`, "data-testid": "timeline-entry", "data-type": entry.type },
      el("time", { dateTime: entry.at, text: formatTime(entry.at) }),
      el("strong", { text: t(`timeline.${entry.type}`) }),
      el("span", { className: "facts", text: facts.join(" · ") }),
      entry.comment ? el("q", { "data-testid": "timeline-comment", text: entry.comment }) : null);
  })));
  return box;
}

function renderActions(item, draft) {
  const closed = item.state === "resolved";
  const message = el("p", { className: "message", "data-testid": "action-message", role: "status", hidden: true });
  const comment = el("textarea", { rows: 3, maxlength: 2000, "data-testid": "action-comment-text" });
  comment.value = draft;
  const outcome = el("select", { "data-testid": "resolve-outcome" },
    OUTCOMES.map((value) => el("option", { value, text: t(`outcome.${value}`) })));
  const button = (action, labelKey, disabled) => el("button", {
    type: "button", "data-testid": `action-${action}`, disabled, text: t(labelKey),
    onclick: () => act(item.alert_id, action, { comment, outcome, message, label: t(labelKey) }),
  });
  return el("div", { className: "actions", "data-testid": "actions" },
    el("h3", { text: t("actions.title") }),
    el("label", {}, el("span", { text: t("actions.comment") }), comment),
    el("div", { className: "buttons" },
      button("ack", "actions.ack", closed || item.state === "acknowledged"),
      button("comment", "actions.addcomment", false),
      button("confirm", "actions.confirm", item.state !== "pending_confirmation"),
      button("escalate", "actions.escalate", closed),
      el("label", { className: "option" }, el("span", { text: t("actions.outcome") }), outcome),
      button("resolve", "actions.resolve", closed)),
    message);
}

async function act(alertId, action, { comment, outcome, message, label }) {
  const text = comment.value.trim();
  const bodies = {
    ack: text ? { comment: text } : {},
    comment: { comment: text },
    confirm: {},
    escalate: {},
    resolve: text ? { outcome: outcome.value, comment: text } : { outcome: outcome.value },
  };
  const show = (value, isError) => {
    message.textContent = value;
    message.classList.toggle("error", isError);
    message.hidden = false;
  };
  if (action === "comment" && !text) {
    show(t("actions.comment_needed"), true);
    return;
  }
  for (const node of message.parentElement.querySelectorAll("button")) node.disabled = true;
  try {
    const { data } = await api(`/api/alerts/${encodeURIComponent(alertId)}/${action}`, { method: "POST", json: bodies[action] });
    upsertAlert(data);
    comment.value = "";
    const section = $("#view-alert");
    await loadAlert(section, alertId);
    const after = $("[data-testid=action-message]", section);
    if (after) {
      after.textContent = t("actions.done", { action: label });
      after.hidden = false;
    }
  } catch (error) {
    if (error.status === 401) return;
    show(error.status === 409 ? t("actions.conflict", { detail: error.message })
      : t("actions.failed", { status: error.status ?? "", detail: error.message }), true);
    await loadAlert($("#view-alert"), alertId);
    const after = $("[data-testid=action-message]");
    if (after && after !== message) {
      after.textContent = message.textContent;
      after.classList.add("error");
      after.hidden = false;
    }
  }
}

// --- sources, duty, status ----------------------------------------------------------------------------

async function loadSources(section) {
  let data;
  try {
    ({ data } = await api("/api/sources"));
  } catch (error) {
    if (error.status !== 401) loadError(section, error);
    return;
  }
  const state = (row) => el("span", { className: `health health-${row.state}`, text: row.state });
  section.replaceChildren(
    el("h2", { text: t("sources.title") }),
    el("h3", { text: t("sources.cameras") }),
    table("cameras", [
      ["sources.id", (c) => c.id], ["sources.name", (c) => c.name], ["sources.grid", (c) => c.grid],
      ["sources.state", state], ["sources.fps", (c) => (typeof c.fps === "number" ? c.fps.toFixed(1) : "–")],
      ["sources.last_frame", (c) => formatTime(c.last_frame_at)], ["sources.errors", (c) => c.errors ?? 0],
    ], data.cameras || [], "queue.empty"),
    el("h3", { text: t("sources.gates") }),
    table("gates", [
      ["sources.id", (g) => g.id], ["sources.name", (g) => g.name], ["sources.grid", (g) => g.grid],
      ["sources.kind", (g) => g.kind], ["sources.state", state],
      ["sources.last_event", (g) => formatTime(g.last_event_at)], ["sources.events", (g) => g.events ?? 0],
      ["sources.rejected", (g) => g.rejected ?? 0],
    ], data.gates || [], "queue.empty"));
}

async function loadDuty(section) {
  let data;
  try {
    ({ data } = await api("/api/duty"));
  } catch (error) {
    if (error.status !== 401) loadError(section, error);
    return;
  }
  section.replaceChildren(
    el("h2", { text: t("duty.title") }),
    table("duty-table", [
      ["duty.grid", (g) => `${g.name} (${g.id})`], ["duty.parent", (g) => g.parent || "–"],
      ["duty.people", (g) => ((g.on_duty || []).length ? g.on_duty.map((p) => p.name).join(", ") : t("duty.nobody"))],
    ], data.grids || [], "duty.nobody"));
}

async function loadStatus(section) {
  let data;
  try {
    ({ data } = await api("/api/status"));
  } catch (error) {
    if (error.status !== 401) loadError(section, error);
    return;
  }
  section.replaceChildren(el("h2", { text: t("status.title") }),
    el("pre", { className: "status", "data-testid": "status-json", text: JSON.stringify(data, null, 2) }));
}

// --- registries, persons, bulk import -----------------------------------------------------------------

async function loadRegistries(section) {
  let data;
  try {
    ({ data } = await api("/api/registries"));
  } catch (error) {
    if (error.status !== 401) loadError(section, error);
    return;
  }
  const link = (registry, suffix, key) => el("a", {
    href: `#/registries/${encodeURIComponent(registry.name)}${suffix}`, text: t(key),
    "data-testid": suffix ? "registry-import" : "registry-persons", "data-registry": registry.name,
  });
  section.replaceChildren(
    el("h2", { text: t("registries.title") }),
    table("registries-table", [
      ["registries.name", (r) => r.name], ["registries.purpose", (r) => r.purpose || "–"],
      ["registries.persons", (r) => r.persons], ["registries.expiring", (r) => r.expiring_30d],
      ["registries.evidence", (r) => t(r.evidence ? "yes" : "no")],
      ["registries.open", (r) => [link(r, "", "registries.open"), " ", link(r, "/import", "registries.import")]],
    ], data.registries || [], "registries.empty"));
}

// A person's id: `person_id` in the API.
const personId = (person) => person.person_id;

// Show a person's simple fields, id and name first (never an embedding: the API serves none).
function personColumns(persons) {
  const keys = new Set(["person_id", "name"]);
  for (const person of persons) {
    for (const [key, value] of Object.entries(person)) {
      if (value === null || ["string", "number", "boolean"].includes(typeof value)) keys.add(key);
    }
  }
  return [...keys];
}

async function loadPersons(section, registry) {
  let data;
  try {
    ({ data } = await api(`/api/registries/${encodeURIComponent(registry)}/persons`));
  } catch (error) {
    if (error.status !== 401) loadError(section, error);
    return;
  }
  const persons = data.persons || [];
  const keys = personColumns(persons);
  const remove = (person) => el("button", {
    type: "button", "data-testid": "person-remove", "data-person-id": personId(person), text: t("persons.remove"),
    onclick: async () => {
      if (!window.confirm(t("persons.remove_confirm", { name: person.name ?? personId(person), registry }))) return;
      try {
        await api(`/api/registries/${encodeURIComponent(registry)}/persons/${encodeURIComponent(personId(person))}`, { method: "DELETE" });
      } catch (error) {
        if (error.status === 401) return;
        window.alert(t("actions.failed", { status: error.status ?? "", detail: error.message }));
      }
      loadPersons(section, registry);
    },
  });
  const message = el("div", { className: "message", "data-testid": "enrol-message", hidden: true });
  const form = el("form", { className: "enrol", "data-testid": "enrol-form" },
    el("h3", { text: t("persons.enrol") }),
    el("label", {}, el("span", { text: t("persons.name") }), el("input", { name: "name", required: true })),
    el("label", {}, el("span", { text: t("persons.photos") }),
      el("input", { name: "photos", type: "file", accept: "image/jpeg,image/png", multiple: true, required: true })),
    el("button", { type: "submit", "data-testid": "enrol-submit", text: t("persons.submit") }),
    message);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = new FormData();
    body.append("name", form.elements.name.value);
    for (const file of form.elements.photos.files) body.append("photos", file, file.name);
    try {
      await api(`/api/registries/${encodeURIComponent(registry)}/persons`, { method: "POST", form: body });
      await loadPersons(section, registry);
      const after = $("[data-testid=enrol-message]", section);
      after.textContent = t("persons.enrolled");
      after.hidden = false;
    } catch (error) {
      if (error.status === 401) return;
      message.replaceChildren(el("p", { className: "error", text: t("persons.refused", { detail: error.message }) }),
        refusalList(error.data?.refusals || [], "enrol-refusals"));
      message.hidden = false;
    }
  });
  section.replaceChildren(
    el("a", { href: "#/registries", className: "back", text: t("nav.registries") }),
    el("h2", { text: t("persons.title", { registry }) }),
    table("persons-table", [...keys.map((key) => [key, (p) => p[key] ?? "–"]), ["persons.remove", remove]],
      persons, "persons.empty"),
    form);
}

function refusalList(refusals, testid) {
  return el("ul", { className: "refusals", "data-testid": testid },
    refusals.map((refusal) => el("li", { "data-testid": "refusal", "data-photo": refusal.photo },
      el("code", { text: refusal.photo }), " — ", el("span", { text: refusal.reason }))));
}

function stopImportPoll() {
  if (importPoll) clearTimeout(importPoll);
  importPoll = null;
}

function renderImport(section, registry) {
  const file = el("input", { type: "file", name: "archive", accept: ".zip,application/zip", "data-testid": "import-file" });
  const submit = el("button", { type: "submit", "data-testid": "import-submit", text: t("import.submit") });
  const result = el("div", { className: "import-result", "data-testid": "import-result" });
  const form = el("form", { className: "import-form", "data-testid": "import-form" },
    el("label", {}, el("span", { text: t("import.file") }), file), submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    stopImportPoll();
    if (!file.files.length) {
      result.replaceChildren(el("p", { className: "error", text: t("import.nofile") }));
      return;
    }
    const body = new FormData();
    body.append("archive", file.files[0], file.files[0].name);
    submit.disabled = true;
    try {
      const { data } = await api(`/api/registries/${encodeURIComponent(registry)}/imports`, { method: "POST", form: body });
      pollImport(result, registry, data.import_id, submit);
    } catch (error) {
      submit.disabled = false;
      if (error.status === 401) return;
      result.replaceChildren(el("p", { className: "error", "data-testid": "import-error",
        text: t("import.failed", { status: error.status ?? "", detail: error.message }) }),
      refusalList(error.data?.refusals || [], "import-refusals"));
    }
  });
  section.replaceChildren(
    el("a", { href: "#/registries", className: "back", text: t("nav.registries") }),
    el("h2", { text: t("import.title", { registry }) }), form, result);
}

async function pollImport(result, registry, importId, submit) {
  let data;
  try {
    ({ data } = await api(`/api/registries/${encodeURIComponent(registry)}/imports/${encodeURIComponent(importId)}`));
  } catch (error) {
    submit.disabled = false;
    if (error.status !== 401) {
      result.replaceChildren(el("p", { className: "error", "data-testid": "import-error",
        text: t("import.failed", { status: error.status ?? "", detail: error.message }) }));
    }
    return;
  }
  if (currentRoute.view !== "import") return;
  const total = Math.max(Number(data.total) || 0, 0);
  const done = Math.min(Math.max(Number(data.done) || 0, 0), total);
  const finished = data.state === "done";
  const percent = finished ? 100 : (total ? Math.floor((100 * done) / total) : 0);
  const refused = data.refused || [];
  result.replaceChildren(
    el("progress", { max: 100, value: percent, "data-testid": "import-progress", "data-state": data.state,
      "aria-valuenow": percent }),
    el("span", { className: "percent", "data-testid": "import-percent", text: `${percent}%` }),
    el("p", { "data-testid": "import-summary", text: finished
      ? t("import.done", { enrolled: data.enrolled ?? 0, refused: refused.length, total })
      : t("import.running", { done, total }) }),
    refused.length ? el("h3", { text: t("import.refusals") }) : null,
    refusalList(refused, "import-refusals"));
  if (finished) {
    submit.disabled = false;
    return;
  }
  importPoll = setTimeout(() => pollImport(result, registry, importId, submit), IMPORT_POLL_MS);
}

// --- audit log, users ---------------------------------------------------------------------------------

async function loadAudit(section, action = "") {
  const query = new URLSearchParams({ limit: "200" });
  if (action) query.set("action", action);
  let data;
  try {
    ({ data } = await api(`/api/audit?${query}`));
  } catch (error) {
    if (error.status !== 401) loadError(section, error);
    return;
  }
  const filter = el("input", { name: "action", value: action, "data-testid": "audit-action" });
  const form = el("form", { className: "heading" },
    el("label", { className: "option" }, el("span", { text: t("audit.action") }), filter),
    el("button", { type: "submit", text: t("audit.filter") }));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    loadAudit(section, filter.value.trim());
  });
  const details = (record) => (record.details && typeof record.details === "object"
    ? JSON.stringify(record.details) : String(record.details ?? ""));
  section.replaceChildren(
    el("h2", { text: t("audit.title") }), form,
    table("audit-table", [
      ["audit.seq", (r) => r.seq], ["audit.at", (r) => formatTime(r.at)], ["audit.action", (r) => r.action],
      ["audit.actor", (r) => r.actor ?? "–"], ["audit.target", (r) => r.target ?? "–"],
      ["audit.details", (r) => el("code", { text: details(r) })],
    ], data.records || [], "audit.empty"));
}

async function loadUsers(section) {
  let data;
  try {
    ({ data } = await api("/api/users"));
  } catch (error) {
    if (error.status !== 401) loadError(section, error);
    return;
  }
  section.replaceChildren(
    el("h2", { text: t("users.title") }),
    table("users-table", [
      ["users.name", (u) => u.name], ["users.role", (u) => t(`role.${u.role}`)],
      ["users.grids", (u) => (u.grids || []).join(", ") || "–"],
      ["users.registries", (u) => (u.registries || []).join(", ") || "–"],
      ["users.disabled", (u) => t(u.disabled ? "yes" : "no")],
    ], data.users || [], "audit.empty"));
}

// --- start --------------------------------------------------------------------------------------------

function relabel() {
  applyLabels();
  $("#language").value = language();
  renderWhoami();
  if (session.me) {
    const live = $("#live");
    if (!live.hidden && live.dataset.state) live.textContent = t(`live.${live.dataset.state}`);
    // The import view keeps its running progress; its labels follow at the next visit.
    if (currentRoute.view === "alerts") renderQueue();
    else if (currentRoute.view !== "import") renderCurrent();
  }
}

async function start() {
  setLanguage(initialLanguage(), { remember: false });
  relabel();
  $("#language").addEventListener("change", (event) => {
    if (LANGUAGES.includes(event.target.value)) setLanguage(event.target.value);
    relabel();
  });
  const sound = $("#sound");
  try {
    sound.checked = window.localStorage.getItem(SOUND_KEY) === "on";
  } catch {
    sound.checked = false;
  }
  sound.addEventListener("change", () => {
    try {
      window.localStorage.setItem(SOUND_KEY, sound.checked ? "on" : "off");
    } catch {
      // storage disabled: the choice lasts for this page only
    }
    // Browsers start audio only after a user gesture: this click is one.
    if (sound.checked) {
      try {
        audio = audio || new AudioContext();
        audio.resume();
      } catch {
        // no audio output
      }
    }
  });
  $("#signin-form").addEventListener("submit", signIn);
  $("#signout").addEventListener("click", signOut);
  $("#queue-state").addEventListener("change", (event) => {
    queue.state = event.target.value;
    loadQueue();
  });
  $("#queue-refresh").addEventListener("click", loadQueue);
  window.addEventListener("hashchange", route);
  // Still signed in from before (the cookie)? /api/me says so and gives the CSRF token again.
  try {
    const { data } = await api("/api/me", { allowUnauthorized: true });
    await signedIn(data);
  } catch {
    showSignIn();
  }
}

start();
