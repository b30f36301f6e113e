"""Rule pose: one frames shard -> keypoints shard + quality table (signpipe.pose.extract_shard)."""

from signpipe.logs import log_to
from signpipe.pose import extract_shard

with log_to(snakemake.log[0]):
    extract_shard(
        snakemake.input.manifest, snakemake.input.frames, snakemake.output.keypoints,
        snakemake.output.quality, snakemake.params.pose, threads=snakemake.threads,
    )
