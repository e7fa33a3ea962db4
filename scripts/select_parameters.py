"""Pick a tuned model's parameters for one outer fold from its candidates' inner scores."""

from survival_framework.worker import hand_over

hand_over(globals())  # run in the run's warm job worker, if any (survival_framework.worker)

from survival_framework.io import read_json, write_json
from survival_framework.job import rule_job
from survival_framework.tuning import select_candidate


def main(smk) -> None:
    with rule_job(smk) as job:
        # the groups' candidates in candidate order (each group file lists its indices)
        by_index = {
            c: result
            for group in map(read_json, smk.input.scores)
            for c, result in zip(group["candidates"], group["results"], strict=True)
        }
        if sorted(by_index) != list(range(len(by_index))):
            raise ValueError(f"candidate groups do not cover 0..n-1: {sorted(by_index)}")
        results = [by_index[c] for c in range(len(by_index))]
        # a fold too small to score is skipped for every candidate alike
        skipped = {int(i): why for r in results for i, why in r["skipped"].items()}
        choice = select_candidate([r["scores"] for r in results], smk.params.metric, skipped)
        best = choice["best"]
        selection = {
            "model": smk.wildcards.model,
            "resample": smk.wildcards.resample,
            **choice,
            "params": None if best is None else results[best]["params"],
            "candidates": [
                {"params": r["params"], "scores": r["scores"], "errors": r["errors"]}
                for r in results
            ],
        }
        if best is None:
            job.log.warning("no candidate has a score: the configured params are fitted")
        else:
            job.log.info("chose candidate %d: %s", best, selection["params"])
        write_json(selection, smk.output.selection)


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
