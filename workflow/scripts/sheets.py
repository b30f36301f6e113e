"""Rule sheets: contact sheets of a few test videos of shard 0 (signpipe.show.sample_sheets)."""

from signpipe.logs import log_to
from signpipe.show import sample_sheets

with log_to(snakemake.log[0]):
    sample_sheets(snakemake.input.hands, snakemake.output[0], count=snakemake.params.videos)
