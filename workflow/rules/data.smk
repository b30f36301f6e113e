# Data stages: synthetic corpus (demo only) -> manifest (+ each shard's rows) -> decode (video -> JPEG frames;
# not for keypoint datasets, which have no videos) -> failures (per-shard lists joined).


rule synth:
    output:
        directory(result("{ds}", "corpus")),
    params:
        corpus=lambda wc: corpus_options(DATASETS[wc.ds]),
    log:
        log_path("synth", "{ds}"),
    benchmark:
        benchmark_path("synth", "{ds}")
    threads: 2
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../envs/signpipe.yaml"
    script:
        "../scripts/synth.py"


rule manifest:
    input:
        unpack(manifest_inputs),
    output:
        manifest=result("{ds}", "manifest.csv"),
        missing=result("{ds}", "missing.csv"),
    params:
        cfg=lambda wc: manifest_config(wc.ds),
        listing=lambda wc: listing(wc.ds).manifest,
    log:
        log_path("manifest", "{ds}"),
    benchmark:
        benchmark_path("manifest", "{ds}")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/signpipe.yaml"
    script:
        "../scripts/manifest.py"


# The rows of one shard, rewritten only when they (or their videos' size and mtime) change: the
# stages per shard read this file, so a new or repaired video reruns its own shard only.
rule shard_manifest:
    input:
        unpack(manifest_inputs),
    output:
        result("{ds}", "manifest", "{shard}.csv"),
    params:
        cfg=lambda wc: manifest_config(wc.ds),
        listing=lambda wc: listing(wc.ds).shards[int(wc.shard)],
    log:
        log_path("shard_manifest", "{ds}", "{shard}"),
    benchmark:
        benchmark_path("shard_manifest", "{ds}", "{shard}")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/signpipe.yaml"
    script:
        "../scripts/shard_manifest.py"


rule decode_shard:
    wildcard_constraints:
        ds=one_of(video_datasets()),
    input:
        manifest=result("{ds}", "manifest", "{shard}.csv"),
    output:
        frames=result("{ds}", "frames", "{shard}.h5"),
        failures=result("{ds}", "frames", "{shard}.failures.csv"),
    params:
        decode=stage_params(config["decode"]),
    log:
        log_path("decode", "{ds}", "{shard}"),
    benchmark:
        benchmark_path("decode", "{ds}", "{shard}")
    threads: config["decode"]["threads"]
    resources:
        mem_mb=4000,
        runtime=120,
    conda:
        "../envs/signpipe.yaml"
    script:
        "../scripts/decode.py"


rule failures:
    input:
        lambda wc: failure_lists(wc.ds),
    output:
        result("{ds}", "failures.csv"),
    log:
        log_path("failures", "{ds}"),
    benchmark:
        benchmark_path("failures", "{ds}")
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../envs/signpipe.yaml"
    script:
        "../scripts/failures.py"
