"""Rule sheets: contact sheets of a few test videos of any shard (signpipe.show.sample_sheets)."""

from signpipe.logs import log_to
from signpipe.show import sample_sheets

with log_to(snakemake.log[0]):
    sample_sheets(list(snakemake.input.hands), snakemake.output[0], count=snakemake.params.videos)
