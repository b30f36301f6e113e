"""Rule predict: new videos -> results/<ds>/predict/<name>.csv with a finished run's models (signpipe.predict.predict_videos)."""

from signpipe.logs import log_to
from signpipe.predict import predict_videos
from signpipe.train import use_threads

with log_to(snakemake.log[0]):
    use_threads(snakemake.threads)
    predict_videos(
        snakemake.params.run, [snakemake.input.videos], snakemake.params.model,
        snakemake.params.top, csv_out=snakemake.output[0],
    )
