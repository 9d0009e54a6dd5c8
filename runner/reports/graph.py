"""The campaign's dependency graph: a tree for the terminal, an SVG for the page.

Both are drawn from a plan's view (``views.plan_view``): a node per job with its state,
an edge from each dependency to its dependent with the ``dependsOn`` condition. The SVG
is plain markup — no script, no font or file fetched — so the page works offline and in a
mail client; it is laid out left to right in dependency order (a job's column is one
past its furthest dependency), one band per campaign.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from html import escape
from typing import Any

Key = tuple[str, str]  # (target, name)

# Fill colours by the state column's words; anything else is the default.
COLOURS = {
    "Complete": "#2e7d32",
    "Active": "#1565c0",
    "Ready": "#42a5f5",
    "Preparing": "#64b5f6",
    "New": "#90caf9",
    "Paused": "#8e24aa",
    "Pausing": "#8e24aa",
    "Suspended": "#8e24aa",
    "Staged": "#ab47bc",
    "Awaiting confirmation": "#ef6c00",
    "Waiting": "#9e9e9e",
    "Failed": "#c62828",
    "Failing": "#c62828",
    "Blocked": "#6d1b1b",
    "Cancelled": "#616161",
    "Cancelling": "#616161",
    "Completing": "#43a047",
}
DEFAULT_COLOUR = "#78909c"
# A `complete` condition accepts failed tasks: drawn dashed, apart from `succeeded`.
DASHES = {"succeeded": "", "complete": "6 4"}

# When a campaign has more jobs than this, chains of Complete jobs fold into one node.
FOLD_ABOVE = 40


@dataclass
class Node:
    """One job (or a folded chain of Complete jobs)."""

    key: Key
    label: str
    state: str
    campaign: str | None
    progress: str = ""
    members: list[Key] = field(default_factory=list)  # a folded chain: every job in it
    outside: bool = False  # a dependency the view does not show (another campaign)


@dataclass(frozen=True)
class Edge:
    """From a dependency to its dependent."""

    source: Key
    target: Key
    condition: str


@dataclass
class Graph:
    """Nodes by key and the edges between them (indexed both ways: 10,000 jobs)."""

    nodes: dict[Key, Node]
    edges: list[Edge]
    _in: dict[Key, list[Edge]] = field(default_factory=dict, repr=False)
    _out: dict[Key, list[Edge]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for edge in self.edges:
            self._in.setdefault(edge.target, []).append(edge)
            self._out.setdefault(edge.source, []).append(edge)

    def parents(self, key: Key) -> list[Edge]:
        """Edges into ``key``."""
        return self._in.get(key, [])

    def children(self, key: Key) -> list[Edge]:
        """Edges out of ``key``."""
        return self._out.get(key, [])


def _label(target: str, name: str, shown_targets: set[str]) -> str:
    return name if len(shown_targets) <= 1 else f"{name} ({target})"


def graph_of(actions: Iterable[dict[str, Any]]) -> Graph:
    """The graph of a plan view's actions (their ``dependencies``)."""
    rows = list(actions)
    targets = {a["target"] for a in rows}
    nodes = {
        (a["target"], a["name"]): Node(
            key=(a["target"], a["name"]),
            label=_label(a["target"], a["name"], targets),
            state=a["state"],
            campaign=a["campaign"],
            progress=a["progressText"],
        )
        for a in rows
    }
    edges = []
    for a in rows:
        for dep in a.get("dependencies", ()):
            source = (dep["target"], dep["name"])
            if source not in nodes:
                nodes[source] = Node(
                    source, f"{dep['name']} ({dep['target']})", "", a["campaign"], outside=True
                )
            edges.append(Edge(source, (a["target"], a["name"]), dep["condition"]))
    return Graph(nodes, edges)


def layers(graph: Graph) -> dict[Key, int]:
    """Each node's column: 0 for a job without dependencies, else one past the furthest.

    Iterative (Kahn's order): a chain may be thousands of jobs long.
    """
    indegree = dict.fromkeys(graph.nodes, 0)
    outgoing: dict[Key, list[Key]] = {key: [] for key in graph.nodes}
    for edge in graph.edges:
        indegree[edge.target] += 1
        outgoing[edge.source].append(edge.target)
    column = dict.fromkeys(graph.nodes, 0)
    ready = sorted(k for k, n in indegree.items() if n == 0)
    while ready:
        key = ready.pop()
        for child in outgoing[key]:
            column[child] = max(column[child], column[key] + 1)
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    return column


# -- the terminal ---------------------------------------------------------------


def tree_lines(view: dict[str, Any]) -> list[str]:
    """The dependency tree of a plan view, as ``cargo tree`` draws one: each job under the
    jobs it depends on; a job met again is marked ``(*)`` and not expanded twice."""
    graph = graph_of(view["actions"])
    lines: list[str] = []
    by_campaign: dict[str | None, list[Node]] = {}
    for node in graph.nodes.values():
        by_campaign.setdefault(node.campaign, []).append(node)
    shown: set[Key] = set()
    for campaign in sorted(by_campaign, key=lambda c: (c is None, c or "")):
        members = by_campaign[campaign]
        if lines:
            lines.append("")
        lines.append(f"campaign {campaign}" if campaign else "(no campaign)")
        roots = sorted((n for n in members if not graph.parents(n.key)), key=lambda n: n.label)
        for index, root in enumerate(roots):
            _draw(graph, root.key, "", index == len(roots) - 1, shown, lines)
    return lines


def _describe(node: Node) -> str:
    if node.outside:
        return f"{node.label}  (not in this view)"
    text = f"{node.label}  {node.state}"
    return f"{text}  {node.progress}" if node.progress else text


def _draw(
    graph: Graph, root: Key, indent: str, last: bool, shown: set[Key], lines: list[str]
) -> None:
    # (key, prefix of its line, prefix of its children, the condition of the edge in)
    stack: list[tuple[Key, str, str, str]] = [
        (root, indent + ("└── " if last else "├── "), indent + ("    " if last else "│   "), "")
    ]
    while stack:
        key, prefix, child_prefix, condition = stack.pop()
        node = graph.nodes[key]
        note = " [complete]" if condition == "complete" else ""
        if key in shown:
            lines.append(f"{prefix}{node.label}{note} (*)")
            continue
        shown.add(key)
        lines.append(f"{prefix}{_describe(node)}{note}")
        children = sorted(graph.children(key), key=lambda e: graph.nodes[e.target].label)
        for index in range(len(children) - 1, -1, -1):
            edge = children[index]
            end = index == len(children) - 1
            stack.append(
                (
                    edge.target,
                    child_prefix + ("└── " if end else "├── "),
                    child_prefix + ("    " if end else "│   "),
                    edge.condition,
                )
            )


# -- the page ---------------------------------------------------------------------

NODE_W, NODE_H, COL_GAP, ROW_GAP, BAND_GAP, PAD = 200, 38, 56, 12, 34, 12


def fold(graph: Graph, limit: int = FOLD_ABOVE) -> Graph:
    """Fold each chain of Complete jobs (one way in, one way out) into one node, in any
    campaign with more than ``limit`` jobs: what is done stays visible as a count."""
    sizes: dict[str | None, int] = {}
    for node in graph.nodes.values():
        sizes[node.campaign] = sizes.get(node.campaign, 0) + 1
    foldable = {
        key
        for key, node in graph.nodes.items()
        if sizes[node.campaign] > limit
        and node.state == "Complete"
        and len(graph.parents(key)) <= 1
        and len(graph.children(key)) <= 1
    }
    head: dict[Key, Key] = {}
    for key in sorted(foldable):
        if key in head:
            continue
        start = key
        while True:  # walk up to the chain's first job
            ups = graph.parents(start)
            if not ups or ups[0].source not in foldable or ups[0].source == key:
                break
            start = ups[0].source
        chain = [start]
        while True:
            downs = graph.children(chain[-1])
            if not downs or downs[0].target not in foldable:
                break
            chain.append(downs[0].target)
        for member in chain:
            head[member] = start
    if not head:
        return graph
    nodes: dict[Key, Node] = {}
    for key, node in graph.nodes.items():
        top = head.get(key)
        if top is None:
            nodes[key] = node
            continue
        folded = nodes.get(top)
        if folded is None:
            folded = Node(top, node.label, "Complete", node.campaign, members=[])
            nodes[top] = folded
        folded.members.append(key)
    for node in nodes.values():
        if len(node.members) > 1:
            first, last = graph.nodes[node.members[0]], graph.nodes[node.members[-1]]
            node.label = f"{len(node.members)} complete: {first.label} … {last.label}"
    edges = []
    for edge in graph.edges:
        source, target = head.get(edge.source, edge.source), head.get(edge.target, edge.target)
        if source != target:
            edges.append(Edge(source, target, edge.condition))
    return Graph(nodes, edges)


def _barycentre(graph: Graph, order: dict[Key, float], node: Node) -> tuple[float, str]:
    ups = [order[e.source] for e in graph.parents(node.key) if e.source in order]
    return (sum(ups) / len(ups) if ups else 0.0, node.label)


def svg(view: dict[str, Any], *, limit: int = FOLD_ABOVE) -> str:
    """The campaign graph of a plan view as inline SVG (no script, nothing fetched)."""
    graph = fold(graph_of(view["actions"]), limit)
    if not graph.nodes:
        return ""
    column = layers(graph)
    by_campaign: dict[str | None, list[Node]] = {}
    for node in graph.nodes.values():
        by_campaign.setdefault(node.campaign, []).append(node)
    where: dict[Key, tuple[float, float]] = {}
    parts: list[str] = []
    y = float(PAD)
    width = 0.0
    for campaign in sorted(by_campaign, key=lambda c: (c is None, c or "")):
        members = by_campaign[campaign]
        columns: dict[int, list[Node]] = {}
        for node in members:
            columns.setdefault(column[node.key], []).append(node)
        rows = 0
        order: dict[Key, float] = {}
        for index in sorted(columns):
            # Each job near its dependencies' rows (barycentre), to keep edges short.
            placed = sorted(columns[index], key=lambda n: _barycentre(graph, order, n))
            for row, node in enumerate(placed):
                order[node.key] = row
            rows = max(rows, len(columns[index]))
        band_h = 22 + rows * (NODE_H + ROW_GAP)
        title = escape(f"campaign {campaign}" if campaign else "no campaign")
        parts.append(
            f'<g class="band"><text x="{PAD}" y="{y + 14:.0f}" font-size="13" '
            f'font-weight="bold" fill="#333">{title}</text></g>'
        )
        for node in members:
            left = float(PAD + column[node.key] * (NODE_W + COL_GAP))
            top = y + 22 + order[node.key] * (NODE_H + ROW_GAP)
            where[node.key] = (left, top)
            width = max(width, left + NODE_W + PAD)
        y += band_h + BAND_GAP
    for edge in graph.edges:
        (x1, y1), (x2, y2) = where[edge.source], where[edge.target]
        sx, sy, tx, ty = x1 + NODE_W, y1 + NODE_H / 2, x2, y2 + NODE_H / 2
        bend = max(20.0, (tx - sx) / 2)
        dash = DASHES.get(edge.condition, "")
        parts.append(
            f'<path class="edge" data-condition="{escape(edge.condition)}" '
            f'd="M{sx:.0f},{sy:.0f} C{sx + bend:.0f},{sy:.0f} {tx - bend:.0f},{ty:.0f} '
            f'{tx:.0f},{ty:.0f}" fill="none" stroke="#555" stroke-width="1.4"'
            + (f' stroke-dasharray="{dash}"' if dash else "")
            + ' marker-end="url(#arrow)"/>'
        )
    for key, node in graph.nodes.items():
        x, top = where[key]
        colour = "#ffffff" if node.outside else COLOURS.get(node.state, DEFAULT_COLOUR)
        ink = "#333" if node.outside else "#fff"
        name = node.label if len(node.label) <= 29 else node.label[:28] + "…"
        second = "not in this view" if node.outside else node.state
        tip = escape(f"{node.label}: {second}" + (f" · {node.progress}" if node.progress else ""))
        if node.progress and not node.members:
            second += f" · {node.progress.split(' ')[0]}"  # the percentage; counts in the tip
        parts.append(
            f'<g class="node" data-state="{escape(node.state)}" '
            f'data-jobs="{max(1, len(node.members))}"><title>{tip}</title>'
            f'<rect x="{x:.0f}" y="{top:.0f}" width="{NODE_W}" height="{NODE_H}" rx="6" '
            f'fill="{colour}" stroke="#333" stroke-width="0.8"'
            + (' stroke-dasharray="3 3"' if node.outside else "")
            + f'/><text x="{x + 8:.0f}" y="{top + 15:.0f}" font-size="12" fill="{ink}">'
            f'{escape(name)}</text><text x="{x + 8:.0f}" y="{top + 30:.0f}" font-size="10.5" '
            f'fill="{ink}">{escape(second)}</text></g>'
        )
    height = y - BAND_GAP + PAD
    defs = (
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#555"/></marker></defs>'
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="graph" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        'aria-label="the campaign\'s dependency graph" font-family="sans-serif">'
        + defs
        + "".join(parts)
        + "</svg>"
    )
