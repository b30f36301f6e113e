# Config validation and every path helper: rules never compute paths inline.

import copy
from pathlib import Path

from snakemake.utils import validate

from signpipe.datasets import wlasl
from signpipe.models import model_spec
from signpipe.synth import corpus_options

# A dataset's own stage blocks override the global ones key by key, so they are kept as the
# user wrote them: validation would fill them with the schema's defaults.
OVERRIDES = {ds: copy.deepcopy(cfg.get("pose", {})) for ds, cfg in config.get("datasets", {}).items()}
validate(config, schema="../schemas/config.schema.yaml", set_default=True)

RESULTS = config["results"]
DATASETS = config["datasets"]


def shards(ds):
    """Shard numbers of a dataset: crc32(video_id) % num_shards, so the DAG is static."""
    return list(range(DATASETS[ds]["num_shards"]))


def synthetic_datasets():
    return [ds for ds, cfg in DATASETS.items() if cfg["adapter"] == "synthetic"]


def result(*parts):
    return "/".join([RESULTS, *map(str, parts)])


def log_path(rule_name, *parts):
    return result("logs", rule_name, *parts) + ".log"


def benchmark_path(rule_name, *parts):
    return result("benchmarks", rule_name, *parts) + ".tsv"


def manifest_inputs(wildcards):
    """What a dataset's manifest is built from: the synthetic corpus, or the user's index files."""
    cfg = DATASETS[wildcards.ds]
    if cfg["adapter"] == "synthetic":
        return {"corpus": result(wildcards.ds, "corpus")}
    keys = {"wlasl": ["index", "videos"], "msasl": ["index_dir", "videos"], "folder": ["root", "classes"],
            "csv": ["manifest"]}
    inputs = {key: cfg[key] for key in keys[cfg["adapter"]] if key in cfg}
    if cfg["adapter"] == "wlasl" and "subset" in cfg:
        inputs["subset"] = str(wlasl.subset_file(cfg, Path(cfg["index"]), f"datasets.{wildcards.ds}"))
    return inputs


def manifest_config(ds):
    """A dataset's block without its per-stage overrides: what its manifest depends on."""
    return {key: value for key, value in DATASETS[ds].items() if key != "pose"}


def pose_config(ds):
    """The pose block for one dataset: the global `pose:` keys, overridden by the dataset's own."""
    return {**config["pose"], **OVERRIDES[ds], "device": config["device"]}


def pose_env(ds):
    """The conda env of a dataset's pose jobs: MMPose has its own pinned stack (envs/mmpose.yaml)."""
    return "../envs/mmpose.yaml" if pose_config(ds)["backend"] == "mmpose" else "../envs/signpipe.yaml"


def per_shard(ds, *parts):
    """One path per shard of a dataset; the last part names the file with `{shard}`."""
    return expand(result(ds, *parts), shard=shards(ds))




def pretrain_datasets():
    """The datasets whose train splits SignBERT is pre-trained on (`pretrain.datasets`: all or names)."""
    names = config["pretrain"]["datasets"]
    return list(DATASETS) if names == "all" else names


def pretrain_hands():
    """Every hands shard of the pre-training datasets (pretrain keeps their train splits only)."""
    return [path for ds in pretrain_datasets() for path in per_shard(ds, "hands", "{shard}.h5")]


def training_config(stage, skip=()):
    """A training stage's block for its script: without the DAG-only keys, plus the global device and seed."""
    block = {k: v for k, v in config[stage].items() if k not in ("threads", "gpus", *skip)}
    return {**block, "device": config["device"], "seed": config["seed"]}


def pretrain_config():
    return {**training_config("pretrain", skip=("datasets",)), "hand_model": config["hand_model"]}


def finetune_config():
    return training_config("finetune", skip=("models", "pretrained"))


def gpus(stage):
    """GPUs a training job asks for (the slurm executor's `gpu` resource): none when device is cpu."""
    return 0 if config["device"] == "cpu" else config[stage]["gpus"]


def finetune_inputs(wildcards):
    """The shards a model reads (its spec's stage), the manifest (class count) and, for SignBERT
    with `finetune.pretrained`, the pre-trained encoder."""
    spec = model_spec(wildcards.model)
    inputs = {
        "shards": per_shard(wildcards.ds, spec.stage, "{shard}.h5"),
        "manifest": result(wildcards.ds, "manifest.csv"),
    }
    if wildcards.model == "signbert" and config["finetune"]["pretrained"]:
        inputs["pretrained"] = result("pretrain", "signbert.pt")
    return inputs


def predictions(ds):
    """predictions.h5 of every model in `finetune.models` for one dataset."""
    return [result(ds, "models", model, "predictions.h5") for model in config["finetune"]["models"]]


def subset_files(ds):
    """Class subsets fuse reports, name -> file of labels: `fusion.subsets.<ds>`, and for a
    synthetic dataset its corpus's face-only confusing pairs."""
    files = dict(config["fusion"]["subsets"].get(ds, {}))
    if DATASETS[ds]["adapter"] == "synthetic":
        files.setdefault("confusing", result(ds, "corpus", "confusing.txt"))
    return files


def subset_inputs(ds):
    """What the subset files depend on: the user's files; a synthetic corpus folder (it holds confusing.txt)."""
    inputs = list(config["fusion"]["subsets"].get(ds, {}).values())
    if DATASETS[ds]["adapter"] == "synthetic":
        inputs.append(result(ds, "corpus"))
    return inputs


def all_outputs():
    """Targets of the default run: the final artifacts of each stage built so far."""
    outputs = []
    for ds in DATASETS:
        outputs.append(result(ds, "manifest.csv"))
        outputs.append(result(ds, "failures.csv"))
        outputs.append(result(ds, "keypoints", "quality.csv"))
        outputs += per_shard(ds, "keypoints", "{shard}.h5")
        outputs += per_shard(ds, "hands", "{shard}.h5")
        outputs += predictions(ds)
        outputs.append(result(ds, "sheets"))
    outputs.append(result("pretrain", "signbert.pt"))
    outputs.append(result("tables", "summary.md"))
    return outputs
