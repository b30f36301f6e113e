# Hands stage: frames + keypoints shard -> both hands' crops, crop-pixel poses and boxes (a keypoint
# dataset has no frames: poses and boxes only).


rule hands_shard:
    input:
        unpack(hands_inputs),
    output:
        hands=result("{ds}", "hands", "{shard}.h5"),
    params:
        hands=stage_params(config["hands"]),
    log:
        log_path("hands", "{ds}", "{shard}"),
    benchmark:
        benchmark_path("hands", "{ds}", "{shard}")
    threads: config["hands"]["threads"]
    resources:
        mem_mb=lambda wc, threads: 1000 + 500 * threads,
        runtime=120,
    conda:
        "../envs/signpipe.yaml"
    script:
        "../scripts/hands.py"
