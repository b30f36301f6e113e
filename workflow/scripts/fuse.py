"""Rule fuse: one dataset's predictions.h5 files -> fusion table and confusion matrix (signpipe.fusion.fuse)."""

from pathlib import Path

from signpipe.fusion import fuse
from signpipe.logs import log_to

with log_to(snakemake.log[0]):
    fuse(
        list(snakemake.input.predictions), snakemake.params.combos, Path(snakemake.output.table).parent,
        subsets=snakemake.params.subsets, weights=snakemake.params.weights,
        manifest=snakemake.input.manifest, notes=snakemake.params.notes,
    )
