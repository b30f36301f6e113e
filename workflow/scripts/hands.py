"""Rule hands: one frames shard + its keypoints shard -> hands shard (signpipe.hands.crop_shard)."""

from signpipe.hands import crop_shard
from signpipe.logs import log_to

with log_to(snakemake.log[0]):
    crop_shard(
        snakemake.input.frames, snakemake.input.keypoints, snakemake.output.hands,
        threads=snakemake.threads, **snakemake.params.hands,
    )
