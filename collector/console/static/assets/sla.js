// Service-level targets per priority: how long an incident may wait,
// from detection, to be acknowledged (moved out of "new") and contained.
// docs/console.md lists them. When the API gives an incident's own
// deadlines (sla.acknowledge_by, sla.contain_by, from the collector's
// configured targets), those win.

const M = 60 * 1000;
const H = 60 * M;

export const TARGETS = {
  P1: { ack: 15 * M, contain: 1 * H },
  P2: { ack: 30 * M, contain: 4 * H },
  P3: { ack: 4 * H, contain: 24 * H },
  P4: { ack: 24 * H, contain: 72 * H },
  P5: { ack: 72 * H, contain: 168 * H },
};

const FINAL = new Set(["closed", "false_positive", "duplicate"]);

export function duration(ms) {
  ms = Math.max(0, ms);
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${String(m % 60).padStart(2, "0")}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

const time = (s) => (s ? Date.parse(s) : 0);

// timer returns the state of one target of an incident at now:
// {state: "met"|"missed"|"due"|"overdue"|"none", text}.
export function timer(inc, which, now = Date.now()) {
  const target = (TARGETS[inc.priority] || TARGETS.P5)[which];
  const start = time(inc.opened_at) || time(inc.detected_at);
  const doneAt = which === "ack" ? time(inc.acknowledged_at) : time(inc.contained_at);
  const given = inc.sla && time(which === "ack" ? inc.sla.acknowledge_by : inc.sla.contain_by);
  const deadline = given || start + target;
  if (doneAt) {
    return doneAt <= deadline
      ? { state: "met", text: `met in ${duration(doneAt - start)}` }
      : { state: "missed", text: `late by ${duration(doneAt - deadline)}` };
  }
  if (FINAL.has(inc.status) || (which === "contain" && ["eradicated", "recovered"].includes(inc.status))) {
    return { state: "none", text: "n/a" };
  }
  return now <= deadline
    ? { state: "due", text: `due in ${duration(deadline - now)}` }
    : { state: "overdue", text: `overdue ${duration(now - deadline)}` };
}

export function age(inc, now = Date.now()) {
  return duration(now - time(inc.detected_at));
}
