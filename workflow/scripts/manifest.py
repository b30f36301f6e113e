"""Rule manifest: a dataset's config block -> manifest.csv + missing.csv (signpipe.datasets)."""

from signpipe.datasets import write_manifest
from signpipe.logs import log_to

with log_to(snakemake.log[0]):
    write_manifest(
        snakemake.params.cfg, snakemake.output.manifest, snakemake.output.missing,
        corpus_dir=snakemake.input.get("corpus"), name=snakemake.wildcards.ds,
    )
