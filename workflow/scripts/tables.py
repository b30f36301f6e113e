"""Rule tables: every dataset's fusion table -> tables/summary.{csv,md} (signpipe.fusion.summary)."""

from pathlib import Path

from signpipe.fusion import summary
from signpipe.logs import log_to

with log_to(snakemake.log[0]):
    summary(dict(zip(snakemake.params.datasets, snakemake.input.tables)), Path(snakemake.output.csv).parent,
            snakemake.params.notes)
