from signpipe.pretrain import PretrainObjective
from signpipe.settings import from_config
from signpipe.train import TrainConfig


def test_known_keys_taken_others_ignored_nulls_default():
    cfg = from_config(TrainConfig, {"epochs": 3, "lr": None, "models": ["x"], "device": "cpu"})
    assert (cfg.epochs, cfg.lr, cfg.device) == (3, TrainConfig().lr, "cpu")


def test_keyword_alias():
    assert from_config(PretrainObjective, {"lambda": 0.5}, aliases={"lambda": "lam"}).lam == 0.5
    assert from_config(PretrainObjective, None) == PretrainObjective()
