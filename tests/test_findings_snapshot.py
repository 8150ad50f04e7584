"""The committed records say the same after a change of code that is not meant to change them.

`tests/snapshots/findings.json` holds every fact, sentence and table that chapters 6-8 and 10 and
the README read from `results/` (see `tests/findings_snapshot.py`), as the code gave them before the
library was reorganised into stages, `experiments/` and `analysis/` (issue #33).
"""
from __future__ import annotations

import json

from tests.findings_snapshot import SNAPSHOT, committed_findings


def _diff(a, b, path="") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}/{k}: only {'before' if k in a else 'now'}" for k in sorted(set(a) ^ set(b))]
        return out + [d for k in sorted(set(a) & set(b)) for d in _diff(a[k], b[k], f"{path}/{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _diff(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} before, {b!r} now"]


def test_the_committed_records_give_the_same_findings(glue_dir):
    before = json.loads(SNAPSHOT.read_text())
    now = json.loads(json.dumps(committed_findings(glue_dir)))
    diff = _diff(before, now)
    assert not diff, f"{len(diff)} findings changed, e.g.:\n" + "\n".join(diff[:15])


def test_the_comparison_sees_a_changed_finding(glue_dir):
    before = json.loads(SNAPSHOT.read_text())
    changed = json.loads(json.dumps(before))
    changed["full_facts"]["avg_merge_radius_L2"] += 0.1
    assert _diff(before, changed) == [f"/full_facts/avg_merge_radius_L2: {before['full_facts']['avg_merge_radius_L2']!r} "
                                      f"before, {changed['full_facts']['avg_merge_radius_L2']!r} now"]
