# Hands stage: frames + keypoints shard -> both hands' crops, crop-pixel poses and boxes.


rule hands:
    input:
        frames=result("{ds}", "frames", "{shard}.h5"),
        keypoints=result("{ds}", "keypoints", "{shard}.h5"),
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
