"""Rule hands: one frames shard (none for a keypoint dataset) + its keypoints shard -> hands shard (signpipe.hands.crop_shard)."""

from signpipe.hands import crop_shard
from signpipe.logs import log_to

with log_to(snakemake.log[0]):
    crop_shard(
        snakemake.input.get("frames"), snakemake.input.keypoints, snakemake.output.hands,
        threads=snakemake.threads, **snakemake.params.hands,
    )
