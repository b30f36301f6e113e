# Fuse stage: per dataset, late fusion of the fine-tuned models' predictions and its accuracy
# table; then one summary table across datasets. The HTML tables are what `snakemake --report` shows.

DEMO_NOTE = (
    "A synthetic corpus (signpipe's drawn signer, the demo's data): these accuracies say that the "
    "pipeline works, not what the methods reach on real signs."
)


rule fuse:
    input:
        predictions=lambda wc: predictions(wc.ds),
        subsets=lambda wc: subset_inputs(wc.ds),
        manifest=result("{ds}", "manifest.csv"),
    output:
        table=result("{ds}", "fusion", "table.csv"),
        markdown=result("{ds}", "fusion", "table.md"),
        html=report(
            result("{ds}", "fusion", "table.html"),
            caption="../report/fusion_table.rst",
            category="Accuracy",
            subcategory="{ds}",
        ),
        confusion=report(
            result("{ds}", "fusion", "confusion.png"),
            caption="../report/confusion.rst",
            category="Accuracy",
            subcategory="{ds}",
        ),
    params:
        combos=config["fusion"]["combos"],
        weights=config["fusion"]["weights"],
        subsets=lambda wc: subset_files(wc.ds),
        notes=lambda wc: [DEMO_NOTE] if DATASETS[wc.ds]["adapter"] == "synthetic" else [],
    log:
        log_path("fuse", "{ds}"),
    benchmark:
        benchmark_path("fuse", "{ds}")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/signpipe.yaml"
    script:
        "../scripts/fuse.py"


rule tables:
    input:
        tables=expand(result("{ds}", "fusion", "table.csv"), ds=labeled_datasets()),
    output:
        csv=result("tables", "summary.csv"),
        markdown=result("tables", "summary.md"),
        html=report(
            result("tables", "summary.html"),
            caption="../report/summary.rst",
            category="Accuracy",
            subcategory="all datasets",
        ),
    params:
        datasets=labeled_datasets(),
        notes=[DEMO_NOTE] if any(DATASETS[ds]["adapter"] == "synthetic" for ds in DATASETS) else [],
    log:
        log_path("tables"),
    benchmark:
        benchmark_path("tables")
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../envs/signpipe.yaml"
    script:
        "../scripts/tables.py"
