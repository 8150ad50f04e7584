"""Run one GLUE pipeline config's runs for one task in a chosen order of phases, in one process, so
that several such queues can share a GPU and a deadline leaves the most useful runs done first.

    python benchmarks/gpu/glue_queue.py CONFIG TASK [PHASE ...] [--half {1,2}]

A phase is ``LEVELS:IMPORTANCES`` (comma-separated; ``0:`` is the unpruned model), run for every seed
of the config; records and resuming are the pipeline's own (``obce pipeline`` writes the same files).
Default phases: the unpruned model, then r_f, random and activation variance at levels 2, 3 and 1,
then the other scores of the config. ``--half 1`` / ``--half 2`` split the default phases into two
disjoint queues for a long task (1: unpruned, core scores at levels 2 and 1; 2: the rest).
"""
from __future__ import annotations

import argparse
import logging

from obce.experiments.config import PipelineConfig, restrict
from obce.experiments.glue_protocol import run_pipeline

CORE = "merge_radius,random,activation_variance"


def default_phases(cfg: PipelineConfig) -> list[str]:
    rest = ",".join(i for i in cfg.importances if i not in CORE.split(","))
    phases = ["0:", f"2:{CORE}", f"3:{CORE}", f"1:{CORE}"]
    return phases + ([f"2,3,1:{rest}"] if rest else [])


def half_phases(cfg: PipelineConfig, half: int) -> list[str]:
    """One of two disjoint halves of :func:`default_phases`, each in the default order."""
    phases = default_phases(cfg)
    first = [phases[0], phases[1], phases[3]]
    return first if half == 1 else [p for p in phases if p not in first]


def parse_phase(phase: str, cfg: PipelineConfig) -> dict[str, list]:
    levels, _, imps = phase.partition(":")
    only = {"levels": [int(v) for v in levels.split(",")]}
    if imps:
        only["importances"] = [i for i in imps.split(",") if i in cfg.importances]
    return only


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config")
    ap.add_argument("task")
    ap.add_argument("phases", nargs="*")
    ap.add_argument("--half", type=int, choices=[1, 2], help="one of two disjoint halves of the default phases")
    args = ap.parse_args()
    if args.half and args.phases:
        ap.error("--half splits the default phases: give no PHASE with it")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cfg = PipelineConfig.from_yaml(args.config)
    phases = half_phases(cfg, args.half) if args.half else args.phases or default_phases(cfg)
    for phase in phases:
        only = parse_phase(phase, cfg)
        if only.get("importances") == []:
            continue
        logging.info("phase %s on %s", phase, args.task)
        run_pipeline(restrict(cfg, tasks=[args.task], **only), progress=False)


if __name__ == "__main__":
    main()
