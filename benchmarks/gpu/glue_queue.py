"""Run one GLUE pipeline config's runs for one task in a chosen order of phases, in one process, so
that several such queues can share a GPU and a deadline leaves the most useful runs done first.

    python benchmarks/gpu/glue_queue.py CONFIG TASK [PHASE ...]

A phase is ``LEVELS:IMPORTANCES`` (comma-separated; ``0:`` is the unpruned model), run for every seed
of the config; records and resuming are the pipeline's own (``obce pipeline`` writes the same files).
Default phases: the unpruned model, then r_f, random and activation variance at levels 2, 3 and 1,
then the other scores of the config.
"""
from __future__ import annotations

import argparse
import logging

from obce.pipeline import PipelineConfig, restrict, run_pipeline

CORE = "merge_radius,random,activation_variance"


def default_phases(cfg: PipelineConfig) -> list[str]:
    rest = ",".join(i for i in cfg.importances if i not in CORE.split(","))
    phases = ["0:", f"2:{CORE}", f"3:{CORE}", f"1:{CORE}"]
    return phases + ([f"2,3,1:{rest}"] if rest else [])


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
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cfg = PipelineConfig.from_yaml(args.config)
    for phase in args.phases or default_phases(cfg):
        only = parse_phase(phase, cfg)
        if only.get("importances") == []:
            continue
        logging.info("phase %s on %s", phase, args.task)
        run_pipeline(restrict(cfg, tasks=[args.task], **only), progress=False)


if __name__ == "__main__":
    main()
