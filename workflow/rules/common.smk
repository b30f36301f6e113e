# Config validation and every path helper: rules never compute paths inline. Nothing imported
# here may pull torch, torchvision, mediapipe or cv2: every job parses this file again.

import copy
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from signpipe.config import TRAINING_GLOBALS, ConfigError, check_config, finetune_params, stage_params, user_blocks
from signpipe.datasets import KEYPOINT_ADAPTERS, wlasl
from signpipe.models import MODELS, model_stages
from signpipe.synth import corpus_options

# A dataset's own stage blocks and each model's finetune block override more general keys, so
# they are kept as the user wrote them: validation fills them with the schema's defaults.
OVERRIDES = {ds: copy.deepcopy(cfg.get("pose", {})) for ds, cfg in config.get("datasets", {}).items()}
MODEL_BLOCKS = user_blocks(config, "finetune", list(MODELS))
try:
    check_config(config, Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml")
except ConfigError as error:
    raise WorkflowError(str(error)) from None
validate(config, schema="../schemas/config.schema.yaml", set_default=True)

RESULTS = config["results"]
DATASETS = config["datasets"]


def shards(ds):
    """Shard numbers of a dataset: crc32(video_id) % num_shards, so the DAG is static."""
    return list(range(DATASETS[ds]["num_shards"]))


def synthetic_datasets():
    return [ds for ds, cfg in DATASETS.items() if cfg["adapter"] == "synthetic"]


def keypoint_datasets():
    """Datasets that ship keypoints, not videos: no decode, a pose import, hands without crops."""
    return [ds for ds, cfg in DATASETS.items() if cfg["adapter"] in KEYPOINT_ADAPTERS]


def video_datasets():
    return [ds for ds in DATASETS if ds not in keypoint_datasets()]


def labeled_datasets():
    """Datasets fine-tuned, fused and tabled on: all but those with `role: pretrain` (no labels)."""
    return [ds for ds, cfg in DATASETS.items() if cfg["role"] != "pretrain"]


def labeled(ds):
    """`ds`, or a WorkflowError naming it when it has `role: pretrain` (nothing to fine-tune or test on)."""
    if ds not in labeled_datasets():
        raise WorkflowError(f"datasets.{ds}: role: pretrain (no labels) feeds pretrain only; no model is "
                            f"fine-tuned or fused on it: ask for a labeled dataset ({', '.join(labeled_datasets())})")
    return ds


def one_of(names):
    """A wildcard constraint matching exactly these dataset names (nothing when there are none)."""
    return "|".join(names) or "(?!)"


def result(*parts):
    return "/".join([RESULTS, *map(str, parts)])


def log_path(rule_name, *parts):
    return result("logs", rule_name, *parts) + ".log"


def benchmark_path(rule_name, *parts):
    return result("benchmarks", rule_name, *parts) + ".tsv"


def manifest_inputs(wildcards):
    """What a dataset's manifest is built from: the synthetic corpus, or the user's index files.

    The user's files are ancient(): their mtimes say nothing (adding one video touches the videos
    folder); what they list is compared through `listing(ds)`, a param, so only changed shards rerun.
    """
    cfg = DATASETS[wildcards.ds]
    if cfg["adapter"] == "synthetic":
        return {"corpus": result(wildcards.ds, "corpus")}
    keys = {"wlasl": ["index", "videos"], "msasl": ["index_dir", "videos"], "folder": ["root", "classes"],
            "csv": ["manifest"], "gislr": ["index", "classes"], "pose": ["manifest", "root", "classes"],
            "arrays": ["manifest", "root", "classes"], "pyskl": ["pickle", "classes"]}
    inputs = {key: cfg[key] for key in keys[cfg["adapter"]] if key in cfg}
    if cfg["adapter"] == "wlasl" and "subset" in cfg:
        inputs["subset"] = str(wlasl.subset_file(cfg, Path(cfg["index"]), f"datasets.{wildcards.ds}"))
    return {key: ancient(path) for key, path in inputs.items()}


LISTINGS = {}


def listing(ds):
    """Digests of what a dataset's manifest lists now (`.manifest`, and `.shards[k]` for shard k): each
    row and its video's size and mtime. Params of the manifest rules, so a new, replaced or recovered
    video reruns the manifest and its own shard only. Taken once per run (WLASL's 21k videos: about
    a second). A synthetic corpus is made by the synth job; its folder is the input that says it changed."""
    from signpipe.datasets import Listing, manifest_listing

    if ds not in LISTINGS:
        cfg = manifest_config(ds)
        LISTINGS[ds] = (Listing("synthetic", ("synthetic",) * cfg["num_shards"]) if cfg["adapter"] == "synthetic"
                        else manifest_listing(cfg, name=ds))
    return LISTINGS[ds]


def manifest_config(ds):
    """A dataset's block without its per-stage overrides: what its manifest depends on. The default
    `role: labeled` is left out, so that results made before the key existed do not rerun."""
    return {key: value for key, value in DATASETS[ds].items()
            if key != "pose" and not (key == "role" and value == "labeled")}


def pose_config(ds):
    """The pose block for one dataset: the global `pose:` keys, overridden by the dataset's own."""
    return {**config["pose"], **OVERRIDES[ds], "device": config["device"]}


def pose_env(ds):
    """The conda env of a dataset's pose jobs: MMPose has its own pinned stack (envs/mmpose.yaml)."""
    return "../envs/mmpose.yaml" if pose_config(ds)["backend"] == "mmpose" else "../envs/signpipe.yaml"


def per_shard(ds, *parts):
    """One path per shard of a dataset; the last part names the file with `{shard}`."""
    return expand(result(ds, *parts), shard=shards(ds))


def failure_lists(ds):
    """Per-shard failure CSVs of a dataset: decode's, or for a keypoint dataset the pose import's."""
    stage = "keypoints" if ds in keypoint_datasets() else "frames"
    return per_shard(ds, stage, "{shard}.failures.csv")


def hands_inputs(wildcards):
    """The shards one hands job reads: keypoints, and frames unless the dataset has none (then no crops)."""
    inputs = {"keypoints": result(wildcards.ds, "keypoints", f"{wildcards.shard}.h5")}
    if wildcards.ds not in keypoint_datasets():
        inputs["frames"] = result(wildcards.ds, "frames", f"{wildcards.shard}.h5")
    return inputs


def sheet_inputs(wildcards):
    """Every shard of a dataset the contact sheets draw from, by stage (frames only where there are any)."""
    stages = ["keypoints", "hands"] + ([] if wildcards.ds in keypoint_datasets() else ["frames"])
    return {stage: per_shard(wildcards.ds, stage, "{shard}.h5") for stage in stages}




def pretrain_datasets():
    """The datasets SignBERT is pre-trained on (`pretrain.datasets`: all or names): the train splits of
    labeled ones, every sequence of `role: pretrain` ones (all train)."""
    names = config["pretrain"]["datasets"]
    return list(DATASETS) if names == "all" else names


def pretrain_hands():
    """Every hands shard of the pre-training datasets (pretrain keeps their train splits only)."""
    return [path for ds in pretrain_datasets() for path in per_shard(ds, "hands", "{shard}.h5")]


def pretrain_config():
    """The pretrain block for its script: without the DAG-only keys, plus the global training keys
    (device, seed, amp, deterministic) and hand model."""
    return {**stage_params(config["pretrain"], skip=("datasets",)), **{key: config[key] for key in TRAINING_GLOBALS},
            "hand_model": config["hand_model"]}


def finetune_config(model):
    """What one model's finetune job depends on (signpipe.config.finetune_params)."""
    return finetune_params(config, MODEL_BLOCKS, model)


def gpus(stage):
    """GPUs a training job asks for (the slurm executor's `gpu` resource): none when device is cpu."""
    return 0 if config["device"] == "cpu" else config[stage]["gpus"]


def finetune_inputs(wildcards):
    """The shards of every stage a model reads (signpipe.models.MODELS), named by stage, the
    manifest (class count) and, for SignBERT with `finetune.pretrained`, the pre-trained encoder."""
    inputs = {stage: per_shard(labeled(wildcards.ds), stage, "{shard}.h5") for stage in model_stages(wildcards.model)}
    inputs["manifest"] = result(wildcards.ds, "manifest.csv")
    if wildcards.model == "signbert" and config["finetune"]["pretrained"]:
        inputs["pretrained"] = result("pretrain", "signbert.pt")
    return inputs


def predictions(ds):
    """predictions.h5 of every model in `finetune.models` for one dataset."""
    return [result(labeled(ds), "models", model, "predictions.h5") for model in config["finetune"]["models"]]


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


def predict_inputs(wildcards):
    """What a predict job reads: its videos (folder or CSV), and the trained models of its method
    (all of the dataset's and its fusion table when `model` is null: the best row is chosen there)."""
    block = config["predict"][wildcards.name]
    if block["dataset"] != wildcards.ds:
        raise WorkflowError(f"predict.{wildcards.name} recognises dataset {block['dataset']!r}, not {wildcards.ds!r}: "
                            f"its output is {predict_targets()[wildcards.name]}")
    models = block["model"].split("+") if block["model"] else config["finetune"]["models"]
    inputs = {"videos": block["videos"],
              "predictions": [result(wildcards.ds, "models", model, "predictions.h5") for model in models]}
    if block["model"] is None or len(models) > 1:
        inputs["fusion"] = result(wildcards.ds, "fusion", "table.csv")  # the best row, the fusion weights
    return inputs


def predict_targets():
    """`predict.<name>` -> results/<dataset>/predict/<name>.csv."""
    return {name: result(block["dataset"], "predict", f"{name}.csv") for name, block in config["predict"].items()}


STAGES = ("decode", "pose", "hands", "pretrain", "finetune")
"""The stages a run can stop after: `snakemake upto_<stage>` (the target rules of the Snakefile)."""


def stage_targets(stage):
    """What `snakemake upto_<stage>` makes for every dataset: that stage's outputs and those of the stages
    before it, with the dataset-level lists (manifest.csv and missing.csv, failures.csv, the pose
    quality.csv) that naming the shard files alone would skip. A keypoint dataset has no decode:
    its failures list comes from the pose import."""
    upto = STAGES[: STAGES.index(stage) + 1]
    outputs = []
    for ds in DATASETS:
        outputs += [result(ds, "manifest.csv"), result(ds, "missing.csv")]
        if "pose" in upto or ds in video_datasets():
            outputs.append(result(ds, "failures.csv"))
        if "pose" in upto:
            outputs += [result(ds, "keypoints", "quality.csv"), *per_shard(ds, "keypoints", "{shard}.h5")]
        elif ds in video_datasets():
            outputs += per_shard(ds, "frames", "{shard}.h5")
        if "hands" in upto:
            outputs += per_shard(ds, "hands", "{shard}.h5")
        if "finetune" in upto and ds in labeled_datasets():  # a `role: pretrain` dataset trains no model
            outputs += predictions(ds)
    if stage == "pretrain" or (stage == "finetune" and "signbert" in config["finetune"]["models"]):
        outputs.append(result("pretrain", "signbert.pt"))  # a run of other models pre-trains nothing
    return outputs


def all_outputs():
    """Targets of the default run: every stage up to finetune, the contact sheets and the tables."""
    return [*stage_targets("finetune"), *(result(ds, "sheets") for ds in DATASETS), result("tables", "summary.md"),
            *predict_targets().values()]


# One run per results folder (signpipe/runlock.py): Snakemake's own lock covers its working
# directory only, so two runs from two folders with the same absolute `results:` would both run.
onstart:
    from signpipe.runlock import RunLocked, acquire

    try:
        acquire(RESULTS)
    except RunLocked as error:
        raise WorkflowError(str(error)) from None


onsuccess:
    from signpipe.runlock import release

    release(RESULTS)


onerror:
    from signpipe.runlock import release

    release(RESULTS)
