"""Everything the book and the README state from the committed records, as one JSON-able dict.

`tests/test_findings_snapshot.py` compares it with `tests/snapshots/findings.json`, written by the code
before the library was reorganised (issue #33): the reorganisation must leave every glued number,
sentence and table of the committed records unchanged. Regenerate deliberately (a change that is meant
to change a finding) with ``python -m tests.findings_snapshot --write`` and say so in the commit.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SNAPSHOT = REPO / "tests" / "snapshots" / "findings.json"


def _plain(value):
    """JSON-able, floats to 10 significant digits (a reordering of sums may move the 16th)."""
    import numpy as np
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        frame = value.reset_index() if not isinstance(value.index, pd.RangeIndex) else value
        return {"columns": [str(c) for c in frame.columns], "rows": _plain(frame.to_numpy().tolist())}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, float):
        return None if math.isnan(value) else float(f"{value:.10g}")
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


def committed_findings(glue_dir: str | Path) -> dict:
    """The facts, sentences and tables of chapters 6-8, 10 and the README, from ``results/``."""
    import pandas as pd

    from obce.analysis.facts import (
        ablation_facts,
        draw_facts,
        findings_text,
        glue_facts,
        posttrain_facts,
        posttrain_text,
    )
    from obce.analysis.methods import compare_methods, method_table, methods_findings, removed_blocks
    from obce.analysis.posttrain import (
        at_levels,
        draw_verdicts,
        keep_fraction_table,
        kept_at_99,
        learned,
        load_table,
        spread,
    )
    from obce.analysis.stats import majority_floors
    from obce.analysis.tables import (
        ablation_table,
        average_table,
        glue_protocol_table,
        levels_table,
        paired_table,
        pooled_table,
        score_table,
        verdict_grid,
    )
    from obce.results import load_ablations, load_records

    res = REPO / "results"
    full = load_records(res / "glue_fulltrain" / "glue")
    gpu = load_records(res / "glue_gpu" / "glue")
    sst2 = load_records(res / "glue_sst2_subset" / "glue")
    short = load_records(res / "glue_short" / "glue")
    methods = load_records(res / "methods_fulltrain" / "glue")
    ablation = load_ablations(res / "ablations_cpu")
    tasks = {r["task"] for r in full + gpu + sst2 + short + methods}
    floors = majority_floors(tasks, glue_dir)
    out = {"floors": floors}
    for name, recs in (("full", full), ("gpu", gpu), ("sst2", sst2), ("short", short)):
        out[f"{name}_facts"] = glue_facts(recs, floors)
        out[f"{name}_protocol"] = glue_protocol_table(recs)
        out[f"{name}_scores"] = score_table(recs)
        out[f"{name}_levels"] = levels_table(recs)
        out[f"{name}_average"] = average_table(recs)
        out[f"{name}_paired"] = paired_table(recs, floors=floors)
        out[f"{name}_pooled"] = pooled_table(recs)
        out[f"{name}_grid"] = verdict_grid(paired_table(recs, floors=floors), short=True)
    out["findings_text"] = findings_text(full, floors)
    out["ablation_facts"] = ablation_facts(full, ablation, floors)
    out["draw_facts"] = draw_facts(full, ablation)
    out["ablation_table"] = ablation_table(full, ablation, floors=floors, also=("activation_variance",))
    cmp = compare_methods(full, methods, floors)
    out["methods_facts"] = cmp["facts"]
    out["methods_points"] = cmp["points"]
    out["methods_verdicts"] = cmp["verdicts"]
    out["methods_table"] = method_table(cmp["points"], cmp["records"])
    out["methods_findings"] = methods_findings(cmp["facts"])
    out["removed_blocks"] = removed_blocks(cmp["records"])
    df = pd.concat([load_table(res / "posttrain"), load_table(res / "posttrain_sst2")], ignore_index=True)
    learn = learned(df, floors)
    out["posttrain_facts"] = posttrain_facts(df, floors)
    out["posttrain_text"] = posttrain_text(df, floors)
    out["posttrain_levels"] = keep_fraction_table(df, learn)
    out["posttrain_kept"] = kept_at_99(df, tasks=learn)
    out["posttrain_verdicts"] = draw_verdicts(at_levels(df), floors=floors)
    out["posttrain_spread"] = spread(df)
    return _plain(out)


if __name__ == "__main__":
    import os

    glue = os.environ.get("OBCE_GLUE_DIR") or str(REPO.parent / "shared" / "glue")
    found = committed_findings(glue)
    if "--write" in sys.argv:
        SNAPSHOT.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
        print(f"wrote {SNAPSHOT}")
    else:
        print(json.dumps(found, indent=1, sort_keys=True)[:2000])
