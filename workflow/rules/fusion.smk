# Fuse stage: per dataset, late fusion of the fine-tuned models' predictions and its accuracy
# table; then one summary table across datasets.


rule fuse:
    input:
        predictions=lambda wc: predictions(wc.ds),
        subsets=lambda wc: subset_inputs(wc.ds),
    output:
        table=report(
            result("{ds}", "fusion", "table.csv"),
            caption="../report/fusion_table.rst",
            category="Accuracy",
            subcategory="{ds}",
        ),
        markdown=result("{ds}", "fusion", "table.md"),
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
        tables=expand(result("{ds}", "fusion", "table.csv"), ds=DATASETS),
    output:
        csv=report(result("tables", "summary.csv"), caption="../report/summary.rst", category="Accuracy"),
        markdown=result("tables", "summary.md"),
    params:
        datasets=list(DATASETS),
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
