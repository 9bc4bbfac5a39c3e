"""The reachability matrix: from every namespace to every service port, one TCP connect.

Expected comes from the tier map: a cell is expected open exactly when a flow allows it
(the firewall namespace ``fw`` and every service's own listening address from itself are
expected closed like everything else). Any other outcome — an allowed flow that does not
connect, or a denied one that does — is a difference, and the matrix fails.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from enclave.deploy import local, names
from enclave.deploy.probe import OPEN
from enclave.deploy.tiermap import TierMap

CONNECT_TIMEOUT = 1.0


@dataclass(frozen=True)
class Cell:
    source: str
    target: str
    port: int
    expected: bool  # open?
    outcome: str  # open / refused / timeout / unreachable / blocked / error: ...

    @property
    def ok(self) -> bool:
        return (self.outcome == OPEN) == self.expected

    def as_dict(self) -> dict:
        return {"from": self.source, "to": self.target, "port": self.port,
                "expected": "open" if self.expected else "closed", "observed": self.outcome,
                "ok": self.ok}


@dataclass(frozen=True)
class Matrix:
    sources: tuple[str, ...]
    targets: tuple[tuple[str, int], ...]
    cells: tuple[Cell, ...]

    @property
    def differences(self) -> list[Cell]:
        return [c for c in self.cells if not c.ok]

    @property
    def ok(self) -> bool:
        return not self.differences

    def cell(self, source: str, target: str, port: int) -> Cell:
        return next(c for c in self.cells
                    if (c.source, c.target, c.port) == (source, target, port))

    def open_flows(self) -> set[tuple[str, str, int]]:
        return {(c.source, c.target, c.port) for c in self.cells if c.outcome == OPEN}

    def as_json(self) -> str:
        return json.dumps({"ok": self.ok, "differences": len(self.differences),
                           "cells": [c.as_dict() for c in self.cells]}, indent=2)

    def as_table(self) -> str:
        """Rows are sources, columns service:port. ``OPEN``/``-`` as expected; a difference
        is marked ``OPEN!`` (should be closed) or ``shut!`` (should be open)."""
        headers = [f"{t}:{p}" for t, p in self.targets]
        width = max(len(s) for s in self.sources) + 2
        cols = [max(len(h), 6) + 2 for h in headers]
        lines = ["from \\ to".ljust(width) + "".join(h.ljust(w) for h, w in zip(headers, cols,
                                                                               strict=True))]
        for source in self.sources:
            row = source.ljust(width)
            for (target, port), w in zip(self.targets, cols, strict=True):
                cell = self.cell(source, target, port)
                mark = "OPEN" if cell.outcome == OPEN else "-"
                if not cell.ok:
                    mark = "OPEN!" if cell.outcome == OPEN else "shut!"
                row += mark.ljust(w)
            lines.append(row.rstrip())
        diffs = self.differences
        lines.append("")
        lines.append(f"{len(self.cells)} probes, {len(self.open_flows())} open, "
                     + ("matches the tier map" if not diffs else
                        f"{len(diffs)} DIFFERENCE(S) from the tier map:"))
        for c in diffs:
            lines.append(f"  {c.source} -> {c.target}:{c.port}: expected "
                         f"{'open' if c.expected else 'closed'}, observed {c.outcome}")
        return "\n".join(lines)


def expected(tmap: TierMap) -> set[tuple[str, str, int]]:
    return {(f.source, f.target, p) for f in tmap.flows for p in f.ports}


def run_matrix(state: local.State, timeout: float = CONNECT_TIMEOUT) -> Matrix:
    """Probe every (namespace, service port) pair of a running deployment, in parallel."""
    tmap = state.tier_map
    sources = (names.FIREWALL, *tmap.endpoints)
    targets = tmap.targets
    addr = {f"{tmap.address(t)}:{p}": (t, p) for t, p in targets}
    procs = {s: local.probe_connect(state, s, list(addr), timeout) for s in sources}
    cells = []
    for source, proc in procs.items():
        out, err = proc.communicate(timeout=timeout * 10 + 20)
        try:
            observed = json.loads(out)
        except json.JSONDecodeError:
            observed = {}
        for target_addr, (target, port) in addr.items():
            outcome = observed.get(target_addr) or f"error: probe failed ({err.strip()[-80:]})"
            cells.append(Cell(source, target, port, tmap.allowed(source, target, port), outcome))
    return Matrix(sources, targets, tuple(cells))
