// Builds a process tree from the evidence of findings: each evidence
// event names a process, its parent and its ancestry (nearest first); the
// chains of all events are merged into one forest, keyed by
// process.entity_id (or pid and executable when the id is missing).

function nodeKey(p) {
  return p.entity_id || `${p.pid}:${p.executable || p.name || ""}`;
}

// chain returns the processes of one event from the oldest ancestor down
// to the event's process.
function chain(ev) {
  const p = ev.process;
  if (!p) return [];
  const up = [];
  if (p.parent) up.push(p.parent);
  for (const a of p.ancestry || []) up.push(a);
  return [...up.reverse(), p];
}

// build returns the roots of the forest. Each node is {key, proc,
// children, hits}: hits counts the findings whose evidence is this very
// process, and rules names their rules.
export function build(findings) {
  const nodes = new Map();
  const roots = [];
  for (const f of findings) {
    for (const ev of f.evidence || []) {
      const procs = chain(ev);
      let parent = null;
      procs.forEach((p, i) => {
        const k = nodeKey(p);
        let n = nodes.get(k);
        if (!n) {
          n = { key: k, proc: p, children: [], hits: 0, rules: new Set(), user: "" };
          nodes.set(k, n);
          if (parent) parent.children.push(n);
          else roots.push(n);
        } else if (!n.proc.command_line && p.command_line) {
          n.proc = { ...n.proc, ...p };
        }
        if (i === procs.length - 1) {
          n.hits++;
          n.rules.add(f.rule && f.rule.name ? f.rule.name : f.rule.id);
          if (p.user && p.user.name) n.user = p.user.name;
        }
        parent = n;
      });
    }
  }
  return roots;
}

// pids returns the process ids of the tree's nodes that findings point
// at, for the kill dialog.
export function flagged(roots) {
  const out = [];
  const walk = (n) => {
    if (n.hits > 0) out.push(n.proc);
    n.children.forEach(walk);
  };
  roots.forEach(walk);
  return out;
}
