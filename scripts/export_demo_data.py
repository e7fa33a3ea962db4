"""Export a real survival dataset bundled with scikit-survival as the demo input (offline)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from survival_framework.demo import export_demo  # noqa: E402
from survival_framework.log import setup_logging  # noqa: E402


def main(smk) -> None:
    log = setup_logging(smk.log[0])
    df = export_demo(smk.wildcards.dataset, smk.output[0])
    log.info("wrote %s: %d rows, columns %s", smk.output[0], len(df), list(df.columns))


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
