# Synthetic, production-shaped survival tables (generated locally, no downloads).
#
#   make data-production                                     # 287,000 rows (production shape)
#   snakemake resources/synthetic/survival_1000000.parquet   # scaling variants:
#                                                            # 10000 50000 1000000 10000000
#
# Optional config (defaults shown):
#   synthetic: {seed: 2024, censoring_rate: 0.35, chunk_rows: 1000000}
# The table is a pure function of (n_rows, seed, censoring_rate); chunk_rows only bounds
# memory (~0.45 GB peak at 500k, ~0.65 GB at 1M rows per chunk) and never changes the data.
# n_rows is passed as the wildcard string "{n_rows}" (digits only, see the constraint) and
# converted to int by the script: no lambda, and no function here (snakemake --lint rejects
# functions mixed with rules in one file).


rule generate_synthetic_data:
    output:
        "resources/synthetic/survival_{n_rows}.parquet",
    log:
        "logs/synthetic/survival_{n_rows}.log",
    benchmark:
        "benchmarks/synthetic/survival_{n_rows}.tsv"
    wildcard_constraints:
        n_rows=r"\d+",
    conda:
        "../envs/survival.yaml"
    threads: 1
    resources:
        mem_mb=1500,
    params:
        n_rows="{n_rows}",
        seed=config["synthetic"]["seed"],
        censoring_rate=config["synthetic"]["censoring_rate"],
        chunk_rows=config["synthetic"]["chunk_rows"],
        code=code_version("generate_synthetic_data.py"),
    script:
        "../scripts/generate_synthetic_data.py"
