// The Cordon web console: a small single-page app over the REST API.
// Views are chosen by the location hash (#/incidents, #/incident/ID,
// #/fleet, #/hunts, #/hunt/ID, #/audit); each view renders from API data and re-renders when
// the event stream says something it shows changed.

import { ApiError, all, call, get, key, setKey } from "./api.js";
import { TARGETS, age, duration, timer } from "./sla.js";
import { build, flagged } from "./tree.js";

const $ = (sel) => document.querySelector(sel);
const main = $("#main");
const dialog = $("#dialog");

// h builds an element: h("a.cls", {href: "#"}, "text", child, ...).
// Text is always set as text, never parsed as HTML.
function h(spec, attrs, ...children) {
  const [tag, ...classes] = spec.split(".");
  const el = document.createElement(tag || "div");
  if (classes.length) el.className = classes.join(" ");
  if (attrs && (typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// show replaces the page's content, leaving out empty parts.
function show(...parts) {
  main.replaceChildren(...parts.flat().filter((p) => p !== null && p !== undefined && p !== false));
}

const me = { name: "", role: "" };
const canRespond = () => me.role === "responder" || me.role === "admin";
const isAdmin = () => me.role === "admin";

const stamp = (s) => (s ? new Date(s).toISOString().replace("T", " ").slice(0, 19) + "Z" : "—");
const ago = (s) => (s ? `${duration(Date.now() - Date.parse(s))} ago` : "never");
const PRIORITY = ["P1", "P2", "P3", "P4", "P5"];
const LIFECYCLE = ["new", "triage", "investigating", "contained", "eradicated", "recovered", "closed"];
const FINAL = ["closed", "false_positive", "duplicate"];
const FINAL_COMMAND = ["succeeded", "failed", "expired"];

// nextStatuses lists where an incident may go from status: forward any
// number of steps, back one, or to a terminal alternative.
function nextStatuses(status) {
  if (FINAL.includes(status)) return [];
  const i = LIFECYCLE.indexOf(status);
  const out = LIFECYCLE.filter((_, j) => j > i || j === i - 1);
  return [...out, "false_positive", "duplicate"];
}

const badge = (p) => h(`span.badge.${(p || "P5").toLowerCase()}`, p || "P5");
const status = (s) => h(`span.status.s-${s}`, s.replace("_", " "));

function errorBox(err) {
  return h("p.error", { role: "alert" }, err instanceof Error ? err.message : String(err));
}

// ---------- sign-in ----------

function signIn(message) {
  $("#top").hidden = true;
  stopLive();
  const input = h("input", { id: "key", type: "password", autocomplete: "off", placeholder: "cdk_…", required: true, spellcheck: "false" });
  const out = h("div");
  const form = h(
    "form.signin",
    {
      onsubmit: async (ev) => {
        ev.preventDefault();
        out.replaceChildren();
        const k = input.value.trim();
        try {
          const who = await call("GET", "/api/v1/me", undefined, k);
          setKey(k);
          Object.assign(me, who);
          start();
        } catch (err) {
          out.replaceChildren(errorBox(err.status === 401 ? "That API key is unknown or revoked." : err));
        }
      },
    },
    h("h1", "Cordon"),
    h("p.muted", "Sign in with an API key. It stays in this browser tab only."),
    h("label", { for: "key" }, "API key"),
    input,
    h("button", { type: "submit", id: "signin" }, "Sign in"),
    message ? h("p.muted", message) : null,
    out,
  );
  show(form);
  input.focus();
}

$("#signout").addEventListener("click", () => {
  setKey("");
  location.hash = "";
  signIn("Signed out.");
});

// ---------- live updates ----------

let source = null;
let retry = null;
let refresh = null; // re-renders the current view; called with the change events since its last call
let pending = null;
let lastRefresh = 0;
let batch = []; // the change events since the last refresh
const MIN_REFRESH = 1000; // at most one refetch a second, however busy the fleet

function setLive(on) {
  const el = $("#live");
  el.classList.toggle("off", !on);
  el.title = on ? "Live updates on" : "Live updates off: reconnecting";
}

async function startLive() {
  stopLive();
  try {
    const { ticket } = await call("POST", "/api/v1/events/ticket");
    source = new EventSource(`/api/v1/events/stream?ticket=${encodeURIComponent(ticket)}`);
  } catch (err) {
    if (err.status === 401) return signIn("Your API key is no longer valid.");
    retry = setTimeout(startLive, 5000);
    return;
  }
  source.addEventListener("ready", () => setLive(true));
  source.addEventListener("change", (ev) => {
    let e = {};
    try {
      e = JSON.parse(ev.data);
    } catch {}
    if (!refresh) return;
    batch.push(e);
    if (pending) return;
    const wait = Math.max(150, lastRefresh + MIN_REFRESH - Date.now());
    pending = setTimeout(() => {
      const events = batch;
      batch = [];
      pending = null;
      lastRefresh = Date.now();
      if (refresh) refresh(events);
    }, wait);
  });
  source.onerror = () => {
    // The ticket is used up: a reconnection needs a new one.
    setLive(false);
    source.close();
    source = null;
    retry = setTimeout(startLive, 3000);
  };
}

function stopLive() {
  clearTimeout(retry);
  if (source) source.close();
  source = null;
  setLive(false);
}

// ---------- routing ----------

let ticker = null;

async function route() {
  clearInterval(ticker);
  refresh = null;
  const [, view, id] = (location.hash || "#/incidents").split("/");
  for (const a of document.querySelectorAll("[data-nav]")) {
    a.classList.toggle("active", a.dataset.nav === view || (view === "incident" && a.dataset.nav === "incidents") || (view === "hunt" && a.dataset.nav === "hunts"));
  }
  try {
    switch (view) {
      case "incident":
        await incidentView(decodeURIComponent(id || ""));
        break;
      case "fleet":
        await fleetView();
        break;
      case "hunts":
        await huntsView();
        break;
      case "hunt":
        await huntView(decodeURIComponent(id || ""));
        break;
      case "audit":
        await auditView();
        break;
      default:
        await queueView();
    }
  } catch (err) {
    if (err.status === 401) return signIn("Your API key is no longer valid.");
    show(errorBox(err));
  }
}

window.addEventListener("hashchange", () => key() && route());

async function start() {
  $("#top").hidden = false;
  $("#who").replaceChildren(h("span", me.name), " ", h("span.role", me.role));
  for (const el of document.querySelectorAll("[data-role=admin]")) el.hidden = !isAdmin();
  startLive();
  await route();
}

// ---------- incident queue ----------

function byPriority(a, b) {
  const p = PRIORITY.indexOf(a.priority) - PRIORITY.indexOf(b.priority);
  return p || Date.parse(a.detected_at) - Date.parse(b.detected_at);
}

function timerCell(inc, which) {
  const t = timer(inc, which);
  return h(`td.timer.t-${t.state}`, { dataset: { timer: which } }, t.text);
}

async function queueView() {
  const showAll = sessionStorage.getItem("cordon.queue") === "all";
  const [incidents, agents] = await Promise.all([all("/api/v1/incidents"), all("/api/v1/agents")]);
  const hosts = new Map(agents.map((a) => [a.id, a.hostname]));
  const shown = incidents.filter((i) => showAll || !FINAL.includes(i.status)).sort(byPriority);
  const rows = shown.map((inc) =>
    h(
      "tr.row",
      { dataset: { id: inc.id }, onclick: () => (location.hash = `#/incident/${inc.id}`) },
      h("td", badge(inc.priority)),
      h("td", h("a.title", { href: `#/incident/${inc.id}` }, inc.title), inc.drill ? h("span.drill", "drill") : null),
      h("td", status(inc.status)),
      h("td", inc.affected_hosts.map((id) => hosts.get(id) || id.slice(0, 8)).join(", ")),
      h("td", inc.assignee || h("span.muted", "unassigned")),
      h("td.timer", { dataset: { timer: "age" } }, age(inc)),
      timerCell(inc, "ack"),
      timerCell(inc, "contain"),
    ),
  );
  const toggle = h("label.toggle", h("input", {
    type: "checkbox",
    checked: showAll,
    onchange: (e) => {
      sessionStorage.setItem("cordon.queue", e.target.checked ? "all" : "open");
      route();
    },
  }), " show closed");
  show(
    h("div.bar", h("h1", "Incidents"), h("span.muted", `${shown.length} ${showAll ? "" : "open "}of ${incidents.length}`), h("span.spacer"), toggle),
    shown.length === 0
      ? h("p.empty", "No open incidents.")
      : h("table.queue", h("thead", h("tr", ["Priority", "Incident", "Status", "Hosts", "Assignee", "Age", "Acknowledge", "Contain"].map((c) => h("th", c)))), h("tbody", rows)),
    h("p.muted.small", "Targets from detection: ", PRIORITY.map((p) => `${p} ${duration(TARGETS[p].ack)} / ${duration(TARGETS[p].contain)}`).join(" · ")),
  );
  // Timers tick every second without refetching.
  ticker = setInterval(() => {
    for (const tr of main.querySelectorAll("tr.row")) {
      const inc = shown.find((i) => i.id === tr.dataset.id);
      if (!inc) continue;
      for (const td of tr.querySelectorAll("[data-timer]")) {
        if (td.dataset.timer === "age") td.textContent = age(inc);
        else {
          const t = timer(inc, td.dataset.timer);
          td.textContent = t.text;
          td.className = `timer t-${t.state}`;
        }
      }
    }
  }, 1000);
  refresh = (events) => !dialog.open && events.some((e) => e.kind === "incident") && queueView();
}

// ---------- incident page ----------

// incidentView renders an incident's page. Unless force is set, it leaves
// the page alone when it already shows this incident with a half-filled
// update form (a re-render started before the responder began typing,
// as after a dialog closes, finishes after it).
async function incidentView(id, force = false) {
  const inc = await get(`/api/v1/incidents/${encodeURIComponent(id)}`);
  const [findings, agents, commands] = await Promise.all([
    all(`/api/v1/findings?incident=${encodeURIComponent(id)}`),
    Promise.all(inc.affected_hosts.map((a) => get(`/api/v1/agents/${encodeURIComponent(a)}`).catch(() => ({ id: a, hostname: a })))),
    Promise.all(inc.affected_hosts.map((a) => all(`/api/v1/commands?agent=${encodeURIComponent(a)}`))).then((l) => l.flat().filter((c) => c.incident_id === id)),
  ]);
  const tree = build(findings);
  const tactics = [...new Set(findings.flatMap((f) => f.attack.tactics))];
  const techniques = [...new Set(findings.flatMap((f) => f.attack.techniques))];
  const ack = timer(inc, "ack");
  const contain = timer(inc, "contain");
  const editing = main.querySelector("form.update[data-dirty]");
  if (!force && editing && editing.dataset.incident === id) return;

  show(
    h("p.crumbs", h("a", { href: "#/incidents" }, "← Incidents")),
    h("div.bar", badge(inc.priority), h("h1", { id: "incident-title" }, inc.title), status(inc.status), inc.drill ? h("span.drill", "drill") : null),
    h(
      "div.grid",
      h(
        "section.card",
        h("h2", "Classification"),
        h(
          "dl",
          h("dt", "Type"), h("dd", inc.type),
          h("dt", "Priority"), h("dd", `${inc.priority} (impact ${inc.impact}, urgency ${inc.urgency})`),
          h("dt", "Asset criticality"), h("dd", inc.asset_criticality || "—"),
          h("dt", "Origin"), h("dd", inc.origin),
          h("dt", "ATT&CK"), h("dd", [...tactics, ...techniques].join(" ") || "—"),
          h("dt", "Users"), h("dd", inc.affected_users.join(", ") || "—"),
          h("dt", "Assignee"), h("dd", inc.assignee || "unassigned"),
        ),
      ),
      h(
        "section.card",
        h("h2", "Service levels"),
        h(
          "dl",
          h("dt", "Detected"), h("dd", `${stamp(inc.detected_at)} (${age(inc)} ago)`),
          h("dt", "Acknowledge"), h(`dd.t-${ack.state}`, inc.acknowledged_at ? `${stamp(inc.acknowledged_at)}, ${ack.text}` : ack.text),
          h("dt", "Contain"), h(`dd.t-${contain.state}`, inc.contained_at ? `${stamp(inc.contained_at)}, ${contain.text}` : contain.text),
          h("dt", "Targets"), h("dd", `${duration(TARGETS[inc.priority].ack)} / ${duration(TARGETS[inc.priority].contain)} for ${inc.priority}`),
        ),
      ),
      canRespond() ? updateForm(inc) : null,
    ),
    inc.playbook ? playbookCard(inc, agents) : null,
    h("section.card", h("h2", "Affected hosts"), hostsTable(inc, agents, tree)),
    incidentHuntCard(inc),
    commands.length ? h("section.card", h("h2", "Commands"), commandsTable(commands, agents)) : null,
    h(
      "section.card",
      h("h2", "Evidence"),
      tree.length ? h("ul.tree", tree.map(treeNode)) : h("p.muted", "No process evidence."),
      h("ul.findings", findings.map((f) => h("li", h(`span.sev.${f.severity}`, f.severity), " ", h("strong", f.rule.name || f.rule.id), " ", f.summary, " ", h("span.muted", stamp(f.detected_at))))),
    ),
    h("section.card", h("h2", "Timeline"), h("ol.timeline", [...inc.timeline].reverse().map((e) =>
      h("li", h("time", stamp(e.at)), " ", h("span.actor", e.actor), " ", h("span.action", e.action.replaceAll("_", " ")), e.detail ? [" — ", e.detail] : null)))),
  );
  const hosts = new Set(inc.affected_hosts);
  const mine = new Set(commands.map((c) => c.id));
  refresh = (events) => {
    if (dialog.open) return; // never pull the page from under an open dialog
    // Nor from under a responder half-way through the update form: the
    // save re-renders the page anyway.
    if (main.querySelector("form.update[data-dirty]")) return;
    const relevant = events.some((e) =>
      (e.kind === "incident" && (!e.id || e.id === id)) ||
      (e.kind === "agent" && hosts.has(e.id)) ||
      (e.kind === "command" && (mine.has(e.id) || !e.id)));
    if (relevant) incidentView(id);
  };
}

// playbookCard shows the incident's playbook: its checklist, which a
// responder ticks and unticks, and its automatic actions per host, which
// a responder approves where they wait for it. A viewer sees the states
// only.
function playbookCard(inc, agents) {
  const pb = inc.playbook;
  const names = new Map(agents.map((a) => [a.id, a.hostname]));
  const out = h("div");
  const patch = async (body, control) => {
    control.disabled = true;
    out.replaceChildren();
    try {
      await call("PATCH", `/api/v1/incidents/${encodeURIComponent(inc.id)}`, body);
      await incidentView(inc.id, true);
    } catch (err) {
      control.disabled = false;
      if (control.type === "checkbox") control.checked = !control.checked;
      out.replaceChildren(errorBox(err));
    }
  };
  const done = pb.steps.filter((st) => st.done).length;
  const step = (st) => {
    const who = st.done ? h("span.muted.small", ` ${st.done_by || "?"}, ${stamp(st.done_at)}`) : null;
    if (!canRespond()) {
      return h(`li${st.done ? ".done" : ""}`, { dataset: { step: st.id } },
        h("span.mark", { "aria-label": st.done ? "done" : "open" }, st.done ? "✓" : "○"), " ", h("span.step-title", st.title), who);
    }
    const box = h("input", {
      type: "checkbox",
      id: `step-${st.id}`,
      checked: st.done,
      onchange: (ev) => patch(ev.target.checked ? { check: st.id } : { uncheck: st.id }, ev.target),
    });
    return h(`li${st.done ? ".done" : ""}`, { dataset: { step: st.id } },
      h("label.check", { for: `step-${st.id}` }, box, h("span.step-title", st.title)), who);
  };
  const action = (a) =>
    h("tr", { dataset: { ref: a.ref } },
      h("td", a.action),
      h("td", names.get(a.agent_id) || a.agent_id),
      h("td", h(`span.pstatus.p-${a.status}`, a.status.replaceAll("_", " "))),
      h("td.result", a.detail || "—"),
      canRespond()
        ? h("td.actions", a.status === "awaiting_approval"
            ? h("button", { type: "button", "data-approve": a.ref, onclick: (ev) => patch({ approve: a.ref }, ev.target) }, "Approve")
            : null)
        : null);
  return h(
    "section.card.playbook",
    { id: "playbook" },
    h("div.bar", h("h2", `Playbook: ${pb.name}`), h("span.muted", { id: "playbook-progress" }, `${done} of ${pb.steps.length} steps done`),
      pb.dry_run ? h("span.drill", "dry run") : null),
    h("ul.checklist", pb.steps.map(step)),
    pb.actions.length
      ? h("table.pactions",
          h("thead", h("tr", ["Action", "Host", "Status", "Detail", canRespond() ? "" : null].filter((c) => c !== null).map((c) => h("th", c)))),
          h("tbody", pb.actions.map(action)))
      : null,
    h("p.muted.small", `From ${pb.source}`),
    out,
  );
}

function treeNode(n) {
  const p = n.proc;
  const name = p.name || (p.executable || "").split("/").pop() || "?";
  return h(
    "li",
    h(
      `div.proc${n.hits ? ".hit" : ""}`,
      h("span.pname", name),
      h("span.pid", `pid ${p.pid}`),
      n.user ? h("span.muted", n.user) : null,
      h("code", { title: p.command_line || p.executable || "" }, p.command_line || p.executable || ""),
      n.hits ? h("span.rule", [...n.rules].join(", ")) : null,
    ),
    n.children.length ? h("ul", n.children.map(treeNode)) : null,
  );
}

function hostsTable(inc, agents, tree) {
  return h(
    "table.hosts",
    h("thead", h("tr", ["Host", "State", "Isolated", "Last seen", canRespond() ? "Response" : null].filter(Boolean).map((c) => h("th", c)))),
    h(
      "tbody",
      agents.map((a) =>
        h(
          "tr",
          { dataset: { agent: a.id } },
          h("td", h("strong", a.hostname), h("div.muted.small", a.id)),
          h("td", a.online ? h("span.dot.on", "online") : h("span.dot", "offline")),
          h("td", a.isolated ? h("span.iso", "isolated") : "no"),
          h("td", ago(a.last_seen)),
          canRespond()
            ? h(
                "td.actions",
                h("button.danger", { type: "button", "data-action": "isolate", onclick: () => actionDialog(inc, a, "isolate") }, "Isolate"),
                h("button", { type: "button", "data-action": "release", onclick: () => actionDialog(inc, a, "release") }, "Release"),
                h("button.danger", { type: "button", "data-action": "kill", onclick: () => actionDialog(inc, a, "kill", flagged(tree)) }, "Kill process"),
              )
            : null,
        ),
      ),
    ),
  );
}

function commandsTable(commands, agents) {
  const names = new Map(agents.map((a) => [a.id, a.hostname]));
  return h(
    "table.commands",
    h("thead", h("tr", ["Action", "Host", "Status", "Result", "By", "Reason", "Requested"].map((c) => h("th", c)))),
    h(
      "tbody",
      commands.map((c) =>
        h(
          "tr",
          { dataset: { command: c.id } },
          h("td", c.action, c.args && c.args.pid ? ` ${c.args.pid}` : ""),
          h("td", names.get(c.agent_id) || c.agent_id),
          h("td", h(`span.cstatus.c-${c.status}`, c.status)),
          h("td.result", c.result || "—"),
          h("td", c.requested_by),
          h("td", c.reason || "—"),
          h("td", stamp(c.created_at)),
        ),
      ),
    ),
  );
}

function updateForm(inc) {
  const next = nextStatuses(inc.status);
  const sel = h("select", { id: "status", name: "status" }, h("option", { value: "" }, `${inc.status} (unchanged)`), next.map((s) => h("option", { value: s }, s.replace("_", " "))));
  const assignee = h("input", { id: "assignee", name: "assignee", value: inc.assignee || "", placeholder: "unassigned" });
  const comment = h("textarea", { id: "comment", name: "comment", rows: 2, placeholder: "Comment for the timeline" });
  const out = h("div");
  const form = h(
    "form.card.update",
    {
      dataset: { incident: inc.id },
      oninput: () => (form.dataset.dirty = "1"),
      onchange: () => (form.dataset.dirty = "1"),
      onsubmit: async (ev) => {
        ev.preventDefault();
        const body = {};
        if (sel.value) body.status = sel.value;
        if (assignee.value.trim() !== (inc.assignee || "")) body.assignee = assignee.value.trim();
        if (comment.value.trim()) body.comment = comment.value.trim();
        if (Object.keys(body).length === 0) {
          out.replaceChildren(errorBox("Nothing to change."));
          return;
        }
        try {
          await call("PATCH", `/api/v1/incidents/${encodeURIComponent(inc.id)}`, body);
          await incidentView(inc.id, true);
        } catch (err) {
          out.replaceChildren(errorBox(err));
        }
      },
    },
    h("h2", "Update"),
    next.length ? [h("label", { for: "status" }, "Status"), sel] : h("p.muted", "This incident is final."),
    h("label", { for: "assignee" }, "Assignee"),
    assignee,
    h("label", { for: "comment" }, "Comment"),
    comment,
    h("button", { type: "submit", id: "save" }, "Save"),
    out,
  );
  return form;
}

// ---------- containment actions ----------

const ACTIONS = {
  isolate: { verb: "Isolate", text: "cut this host off the network, except for the collector" },
  release: { verb: "Release", text: "lift the isolation of this host" },
  kill: { verb: "Kill", text: "kill a process on this host" },
  drill: { verb: "Drill", text: "run a harmless attack simulation on this host; its findings open an incident marked as a drill" },
};

function actionDialog(inc, agent, action, procs = []) {
  const a = ACTIONS[action];
  const reason = h("textarea", { id: "reason", rows: 3, required: true, placeholder: "Why (recorded on the incident and in the audit trail)" });
  const pid = h("input", { id: "pid", type: "number", min: 1, required: true, list: "pids" });
  const confirm = h("input", { id: "confirm", type: "checkbox", required: true });
  const out = h("div");
  const submit = h("button.danger", { type: "submit", id: "confirm-action" }, `${a.verb} ${agent.hostname}`);
  const form = h(
    "form",
    {
      method: "dialog",
      onsubmit: async (ev) => {
        ev.preventDefault();
        const body = { agent_id: agent.id, action, reason: reason.value.trim() };
        if (inc) body.incident_id = inc.id;
        if (!body.reason) return out.replaceChildren(errorBox("Give a reason."));
        if (action === "kill") body.args = { pid: Number(pid.value) };
        submit.disabled = true;
        try {
          const cmd = await call("POST", "/api/v1/commands", body);
          form.replaceWith(progress(cmd, agent));
        } catch (err) {
          submit.disabled = false;
          out.replaceChildren(errorBox(err));
        }
      },
    },
    h("h2", `${a.verb} ${agent.hostname}?`),
    h("p", `This will ${a.text}.`),
    action === "kill"
      ? [
          h("label", { for: "pid" }, "Process id"),
          pid,
          h("datalist", { id: "pids" }, procs.map((p) => h("option", { value: p.pid }, `${p.name || p.executable} (${p.pid})`))),
        ]
      : null,
    h("label", { for: "reason" }, "Reason"),
    reason,
    h("label.check", confirm, ` I confirm: ${a.verb.toLowerCase()} ${agent.hostname}`),
    out,
    h("div.buttons", h("button.quiet", { type: "button", onclick: closeDialog }, "Cancel"), submit),
  );
  dialog.replaceChildren(form);
  dialog.showModal();
  reason.focus();
}

function closeDialog() {
  dialog.close();
}

// However the dialog closes (a button, Escape), the page behind it shows
// the state it left.
dialog.addEventListener("close", () => {
  dialog.replaceChildren();
  route();
});

// progress shows a command going through its states until a final one,
// polling it and following change events.
function progress(cmd, agent) {
  const steps = ["pending", "delivered", "finished"];
  const box = h("div.progress", { id: "progress" });
  let timer = null;
  const render = (c) => {
    const final = FINAL_COMMAND.includes(c.status);
    const reached = final ? 3 : steps.indexOf(c.status) + 1;
    box.replaceChildren(
      h("h2", `${c.action} on ${agent.hostname}`),
      h("ol.steps", steps.map((s, i) => h(`li${i < reached ? ".done" : ""}${i === reached - 1 && !final ? ".current" : ""}`, i === 2 && final ? c.status : s))),
      h("p", "Status: ", h(`strong.cstatus.c-${c.status}`, { id: "command-status" }, c.status)),
      h("p", "Result: ", h("span", { id: "command-result" }, c.result || (final ? "—" : "waiting for the agent…"))),
      h("p.muted.small", `Command ${c.id}`),
      h("div.buttons", h("button", { type: "button", id: "close-progress", onclick: () => { clearInterval(timer); closeDialog(); } }, final ? "Close" : "Close (keeps running)")),
    );
    if (final) clearInterval(timer);
  };
  render(cmd);
  timer = setInterval(async () => {
    if (!dialog.open) return clearInterval(timer);
    try {
      render(await get(`/api/v1/commands/${encodeURIComponent(cmd.id)}`));
    } catch (err) {
      box.append(errorBox(err));
      clearInterval(timer);
    }
  }, 1000);
  return box;
}

// ---------- fleet ----------

async function fleetView() {
  const agents = await all("/api/v1/agents");
  agents.sort((a, b) => a.hostname.localeCompare(b.hostname));
  const online = agents.filter((a) => a.online).length;
  const isolated = agents.filter((a) => a.isolated).length;
  show(
    h("div.bar", h("h1", "Fleet"), h("span.muted", `${agents.length} ${agents.length === 1 ? "agent" : "agents"}, ${online} online, ${isolated} isolated`)),
    agents.length === 0
      ? h("p.empty", "No agents enrolled yet.")
      : h(
          "table.fleet",
          h("thead", h("tr", ["Host", "State", "Isolated", "Version", "Rules", "Platform", "Tags", "Spool", "Last seen", canRespond() ? "Response" : null].filter(Boolean).map((c) => h("th", c)))),
          h(
            "tbody",
            agents.map((a) =>
              h(
                "tr",
                { dataset: { agent: a.id } },
                h("td", h("strong", a.hostname), h("div.muted.small", a.id)),
                h("td", a.revoked ? h("span.dot.revoked", "revoked") : a.online ? h("span.dot.on", "online") : h("span.dot", "offline")),
                h("td", a.isolated ? h("span.iso", "isolated") : "no"),
                h("td", a.version || "—"),
                h("td.rules", { title: a.rules_error || "" },
                  a.rules_version ? h("code", a.rules_version) : h("span.muted", "built-in"),
                  a.rules_error ? h("div.error.small", "refused a set") : null),
                h("td", [a.os, a.arch, a.platform].filter(Boolean).join(" ") || "—"),
                h("td", Object.entries(a.tags || {}).map(([k, v]) => h("span.tag", `${k}=${v}`))),
                h("td", `${a.spool_pending}${a.spool_dropped ? ` (${a.spool_dropped} dropped)` : ""}`),
                h("td", { title: stamp(a.last_seen) }, ago(a.last_seen)),
                canRespond() && !a.revoked
                  ? h("td.actions", h("button", { type: "button", "data-action": "drill", onclick: () => actionDialog(null, a, "drill") }, "Run drill"))
                  : canRespond() ? h("td") : null,
              ),
            ),
          ),
        ),
  );
  refresh = (events) => !dialog.open && events.some((e) => e.kind === "agent") && fleetView();
}

// ---------- hunts ----------

const huntCounts = (c) =>
  `${c.answered} answered, ${c.partial} partial, ${c.failed} failed, ${c.pending} pending, ${c.expired} expired of ${c.agents}`;
const huntStatus = (s) => h(`span.hstatus.h-${s}`, s);

// matchSummary says in a line what a hunt match is: the process, file or
// connection of its event.
function matchSummary(ev) {
  const parts = [];
  if (ev.event) parts.push([ev.event.category, ev.event.type, ev.event.action].filter(Boolean).join("/"));
  if (ev.process) parts.push(ev.process.command_line || ev.process.executable || ev.process.name || "");
  if (ev.file) parts.push(ev.file.path || "", ev.file.hash && ev.file.hash.sha256 ? `sha256 ${ev.file.hash.sha256.slice(0, 12)}…` : "");
  if (ev.destination && ev.destination.ip) parts.push(`→ ${ev.destination.ip}${ev.destination.port ? `:${ev.destination.port}` : ""}`);
  return parts.filter(Boolean).join(" ");
}

// matchTimes gives the first and last time of an agent's matches.
function matchTimes(a) {
  const ts = a.matches.map((m) => Date.parse(m.time)).filter((t) => !Number.isNaN(t)).sort((x, y) => x - y);
  if (!ts.length) return "—";
  const first = stamp(new Date(ts[0]).toISOString());
  return ts.length === 1 || ts[0] === ts[ts.length - 1] ? first : `${first} … ${stamp(new Date(ts[ts.length - 1]).toISOString())}`;
}

// incidentHuntCard scopes an incident: a responder starts a hunt for its
// indicators; the card shows the latest such hunt's progress, polling it
// while agents are pending, and offers the matching hosts that are not
// yet in the incident. A viewer sees the progress and hosts only.
function incidentHuntCard(inc) {
  const body = h("div", { id: "hunt-body" }, h("p.muted", "Loading hunts…"));
  const out = h("div");
  const button = canRespond()
    ? h("button", {
        type: "button",
        id: "hunt-incident",
        "data-hunt": "incident",
        onclick: async (ev) => {
          ev.target.disabled = true;
          out.replaceChildren();
          try {
            const hunt = await call("POST", `/api/v1/incidents/${encodeURIComponent(inc.id)}/hunt`, {});
            follow(hunt.id);
          } catch (err) {
            out.replaceChildren(errorBox(err));
          } finally {
            ev.target.disabled = false;
          }
        },
      }, "Hunt for indicators")
    : null;
  const card = h("section.card", { id: "hunt" }, h("div.bar", h("h2", "Scoping"), h("span.spacer"), button), out, body);
  let timer = null;
  const render = (hunt) => {
    if (!hunt) {
      body.replaceChildren(h("p.muted", "No hunt for this incident's indicators yet."));
      return;
    }
    const inIncident = new Set(inc.affected_hosts);
    const matched = (hunt.agents || []).filter((a) => a.matches && a.matches.length);
    const others = matched.filter((a) => !inIncident.has(a.agent_id));
    const already = matched.length - others.length;
    body.replaceChildren(
      h("p", h("a", { href: `#/hunt/${hunt.id}` }, "Hunt"), " ", huntStatus(hunt.status), " ", h("span", { id: "hunt-progress" }, huntCounts(hunt.counts)), " ", h("span.muted.small", stamp(hunt.created_at))),
      h("p.small", h("code.query", hunt.query)),
      others.length
        ? h("table.hunt-hosts",
            h("thead", h("tr", ["Host", "Matches", "When", canRespond() ? "" : null].filter((c) => c !== null).map((c) => h("th", c)))),
            h("tbody", others.map((a) =>
              h("tr", { dataset: { huntHost: a.agent_id } },
                h("td", h("strong", a.hostname || a.agent_id), h("div.muted.small", a.agent_id)),
                h("td", a.matches.length),
                h("td.small", matchTimes(a)),
                canRespond()
                  ? h("td.actions", h("button", { type: "button", "data-add-host": a.agent_id, onclick: () => addHostDialog(inc, a) }, "Add to incident"))
                  : null))))
        : h("p.muted", { id: "hunt-no-others" }, hunt.status === "running" ? "No other host matches so far." : "No host outside this incident matches."),
      already ? h("p.muted.small", `${already} ${already === 1 ? "host" : "hosts"} of the incident match too.`) : null,
    );
  };
  const follow = async (huntID) => {
    clearTimeout(timer);
    try {
      const hunt = await get(`/api/v1/hunts/${encodeURIComponent(huntID)}`);
      render(hunt);
      if (hunt.status === "running") timer = setTimeout(() => card.isConnected && follow(huntID), 1000);
    } catch (err) {
      body.replaceChildren(errorBox(err));
    }
  };
  all("/api/v1/hunts")
    .then((hunts) => {
      const mine = hunts.filter((x) => x.incident_id === inc.id);
      if (!mine.length) return render(null);
      mine.sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at));
      return follow(mine[0].id);
    })
    .catch((err) => body.replaceChildren(errorBox(err)));
  return card;
}

// addHostDialog asks for confirmation before adding a host a hunt found
// to the incident's affected hosts.
function addHostDialog(inc, a) {
  const name = a.hostname || a.agent_id;
  const reason = h("textarea", { id: "add-reason", rows: 2, placeholder: "Why (recorded on the incident's timeline)" });
  const confirm = h("input", { id: "confirm", type: "checkbox", required: true });
  const out = h("div");
  const submit = h("button", { type: "submit", id: "confirm-add-host" }, `Add ${name}`);
  const form = h(
    "form",
    {
      method: "dialog",
      onsubmit: async (ev) => {
        ev.preventDefault();
        submit.disabled = true;
        try {
          await call("POST", `/api/v1/incidents/${encodeURIComponent(inc.id)}/hosts`, {
            agent_id: a.agent_id,
            reason: reason.value.trim() || `matched the incident's hunt (${a.matches.length} ${a.matches.length === 1 ? "match" : "matches"})`,
          });
          closeDialog();
        } catch (err) {
          submit.disabled = false;
          out.replaceChildren(errorBox(err));
        }
      },
    },
    h("h2", `Add ${name} to the incident?`),
    h("p", `This adds ${name} to the affected hosts of “${inc.title}”; it goes on the timeline and may raise the incident's impact.`),
    h("label", { for: "add-reason" }, "Reason"),
    reason,
    h("label.check", confirm, ` I confirm: add ${name}`),
    out,
    h("div.buttons", h("button.quiet", { type: "button", onclick: closeDialog }, "Cancel"), submit),
  );
  dialog.replaceChildren(form);
  dialog.showModal();
  reason.focus();
}

// huntForm starts a hunt with a query; the collector's parse error, with
// its position, shows under the form.
function huntForm() {
  const query = h("textarea", { id: "hunt-query", rows: 2, required: true, spellcheck: "false", placeholder: 'process.executable endswith "/xmrig" and user.name != "root"' });
  const agents = h("input", { id: "hunt-agents", value: "all", spellcheck: "false" });
  const since = h("input", { id: "hunt-since", value: "24h", size: 6 });
  const out = h("div", { id: "hunt-error" });
  const submit = h("button", { type: "submit", id: "hunt-start", "data-hunt": "start" }, "Start hunt");
  return h(
    "form.card.hunt-form",
    {
      onsubmit: async (ev) => {
        ev.preventDefault();
        out.replaceChildren();
        const body = { query: query.value.trim(), agents: agents.value.trim() || "all", since: since.value.trim() || "24h" };
        if (!body.query) return out.replaceChildren(errorBox("query: give a query."));
        submit.disabled = true;
        try {
          const hunt = await call("POST", "/api/v1/hunts", body);
          location.hash = `#/hunt/${hunt.id}`;
        } catch (err) {
          submit.disabled = false;
          out.replaceChildren(errorBox(err));
        }
      },
    },
    h("h2", "New hunt"),
    h("label", { for: "hunt-query" }, "Query"),
    query,
    h("div.row",
      h("span", h("label", { for: "hunt-agents" }, "Agents"), agents),
      h("span", h("label", { for: "hunt-since" }, "Since"), since)),
    h("p.muted.small", "Agents: all, or agent ids and name=value tags separated by commas. Since: how far back the agents read their history."),
    submit,
    out,
  );
}

async function huntsView() {
  clearInterval(ticker);
  const hunts = await all("/api/v1/hunts");
  show(
    h("div.bar", h("h1", "Hunts"), h("span.muted", `${hunts.length} ${hunts.length === 1 ? "hunt" : "hunts"}`)),
    canRespond() ? huntForm() : null,
    hunts.length === 0
      ? h("p.empty", "No hunts yet.")
      : h(
          "table.hunts",
          h("thead", h("tr", ["Created", "Query", "Agents", "Status", "Progress", "Matched", "By", "Incident"].map((c) => h("th", c)))),
          h("tbody", hunts.map((x) =>
            h("tr.row", { dataset: { hunt: x.id }, onclick: () => (location.hash = `#/hunt/${x.id}`) },
              h("td", stamp(x.created_at)),
              h("td", h("a", { href: `#/hunt/${x.id}` }, h("code.query", x.query))),
              h("td", x.selector),
              h("td", huntStatus(x.status)),
              h("td.small", huntCounts(x.counts)),
              h("td", `${x.counts.matched} ${x.counts.matched === 1 ? "agent" : "agents"}, ${x.counts.matches} ${x.counts.matches === 1 ? "match" : "matches"}`),
              h("td", x.created_by),
              h("td", x.incident_id ? h("a", { href: `#/incident/${x.incident_id}`, onclick: (e) => e.stopPropagation() }, "incident") : "—")))),
        ),
  );
  // Hunts send no change events: poll while one is running.
  if (hunts.some((x) => x.status === "running")) {
    // Never under a half-typed query.
    const busy = () => dialog.open || (main.querySelector("#hunt-query")?.value || "") !== "";
    ticker = setInterval(() => !busy() && huntsView().catch((err) => show(errorBox(err))), 2000);
  }
}

async function huntView(id) {
  clearInterval(ticker);
  const x = await get(`/api/v1/hunts/${encodeURIComponent(id)}`);
  const agents = x.agents || [];
  const matches = agents.flatMap((a) => (a.matches || []).map((m) => ({ ...m, host: a.hostname || a.agent_id })));
  matches.sort((a, b) => Date.parse(b.time) - Date.parse(a.time));
  show(
    h("p.crumbs", h("a", { href: "#/hunts" }, "← Hunts")),
    h("div.bar", h("h1", { id: "hunt-title" }, "Hunt"), h("span", { id: "hunt-status" }, huntStatus(x.status)), h("span.muted.small", x.id)),
    h(
      "section.card",
      h(
        "dl",
        h("dt", "Query"), h("dd", h("code.query", { id: "hunt-query-text" }, x.query)),
        h("dt", "Agents"), h("dd", x.selector),
        h("dt", "Progress"), h("dd", { id: "hunt-progress" }, huntCounts(x.counts)),
        h("dt", "Matches"), h("dd", `${x.counts.matches} on ${x.counts.matched} ${x.counts.matched === 1 ? "agent" : "agents"}`),
        h("dt", "Since"), h("dd", stamp(x.since)),
        h("dt", "Budget"), h("dd", `${x.budget} and ${x.max_matches} matches per agent`),
        h("dt", "Incident"), h("dd", x.incident_id ? h("a", { href: `#/incident/${x.incident_id}` }, x.incident_id) : "—"),
        h("dt", "Created"), h("dd", `${stamp(x.created_at)} by ${x.created_by}`),
        h("dt", "Expires"), h("dd", stamp(x.expires_at)),
      ),
    ),
    h(
      "section.card",
      h("h2", "Agents"),
      h("table.hunt-agents",
        h("thead", h("tr", ["Host", "Status", "Reason", "Scanned", "Matches", "Delivered", "Answered"].map((c) => h("th", c)))),
        h("tbody", agents.map((a) =>
          h("tr", { dataset: { agent: a.agent_id } },
            h("td", h("strong", a.hostname || a.agent_id), h("div.muted.small", a.agent_id)),
            h("td", h(`span.astatus.a-${a.status}`, a.status)),
            h("td.result", a.reason || "—"),
            h("td", a.scanned),
            h("td", (a.matches || []).length),
            h("td", stamp(a.delivered_at)),
            h("td", stamp(a.answered_at)))))),
    ),
    h(
      "section.card",
      h("h2", "Matches"),
      matches.length
        ? h("table.hunt-matches",
            h("thead", h("tr", ["Time", "Host", "Source", "Event"].map((c) => h("th", c)))),
            h("tbody", matches.map((m) => h("tr", h("td", stamp(m.time)), h("td", m.host), h("td", m.source), h("td", h("code", matchSummary(m.event || {})))))))
        : h("p.muted", x.status === "running" ? "No matches so far." : "No matches."),
    ),
  );
  // Hunts send no change events: poll while agents are pending.
  if (x.status === "running") ticker = setInterval(() => !dialog.open && huntView(id).catch((err) => show(errorBox(err))), 1000);
}

// ---------- audit ----------

async function auditView() {
  if (!isAdmin()) {
    show(errorBox("The audit trail needs the admin role."));
    return;
  }
  const [page, verify] = await Promise.all([get("/api/v1/audit?limit=200"), get("/api/v1/audit/verify")]);
  show(
    h("div.bar", h("h1", "Audit trail"), verify.ok
      ? h("span.ok", `chain intact: ${verify.entries} entries`)
      : h("span.error", `chain broken at entry ${verify.first_bad_seq}: ${verify.reason}`)),
    h(
      "table.audit",
      h("thead", h("tr", ["#", "Time", "Actor", "Role", "Action", "Target", "Source", "Outcome"].map((c) => h("th", c)))),
      h("tbody", page.items.map((e) => h("tr", h("td", e.seq), h("td", stamp(e.at)), h("td", e.actor), h("td", e.role || "—"), h("td", e.action), h("td.small", e.target || "—"), h("td", e.source), h(`td.o-${e.outcome}`, `${e.outcome} (${e.status})`)))),
    ),
  );
}

// ---------- boot ----------

(async () => {
  if (!key()) return signIn();
  try {
    Object.assign(me, await get("/api/v1/me"));
    await start();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      setKey("");
      return signIn("Your API key is no longer valid.");
    }
    show(errorBox(err));
  }
})();
