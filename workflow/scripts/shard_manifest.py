"""Rule shard_manifest: a dataset's config block -> the manifest rows of one shard (signpipe.datasets)."""

from signpipe.datasets import write_shard_manifest
from signpipe.logs import log_to

with log_to(snakemake.log[0]):
    write_shard_manifest(
        snakemake.params.cfg, int(snakemake.wildcards.shard), snakemake.output[0],
        corpus_dir=snakemake.input.get("corpus"), name=snakemake.wildcards.ds,
    )
