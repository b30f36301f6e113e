# Sheets: contact sheets of a few test videos per dataset (from any shard), for `snakemake --report`.


rule sheets:
    input:
        unpack(sheet_inputs),
    output:
        report(
            directory(result("{ds}", "sheets")),
            patterns=["{video_id}.png"],
            caption="../report/show.rst",
            category="Contact sheets",
            subcategory="{ds}",
        ),
    params:
        videos=4,
    log:
        log_path("sheets", "{ds}"),
    benchmark:
        benchmark_path("sheets", "{ds}")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/signpipe.yaml"
    script:
        "../scripts/sheets.py"
