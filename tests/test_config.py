import pytest

from engine.config import Config, ConfigError, update_from_dotted


def test_round_trip_preserves_every_field():
    config = Config()
    config.data.spec = "some/folder"
    config.model.options = {"ngf": 32, "g_input": "dense"}
    config.optim.lr_d = 1e-4
    config.metrics.names = ["swd", "fid"]
    again = Config.from_json(config.to_json())
    assert again == config
    assert again.to_json() == config.to_json()


def test_unknown_keys_and_wrong_types_are_named():
    with pytest.raises(ConfigError, match="unknown key.*train.*bogus"):
        Config.from_dict({"train": {"bogus": 1}})
    with pytest.raises(ConfigError, match="train.batch_size must be int"):
        Config.from_dict({"train": {"batch_size": "64"}})
    with pytest.raises(ConfigError, match="not valid JSON"):
        Config.from_json("{")


def test_int_is_accepted_for_float_but_bool_is_not_int():
    config = Config.from_dict({"optim": {"lr_g": 1}, "train": {"max_seconds": 5}})
    assert isinstance(config.optim.lr_g, float)
    with pytest.raises(ConfigError):
        Config.from_dict({"train": {"batch_size": True}})


def test_dotted_update():
    config = Config()
    update_from_dotted(config, "train.batch_size", 32)
    assert config.train.batch_size == 32
    with pytest.raises(ConfigError, match="unknown config key"):
        update_from_dotted(config, "train.nope", 1)
    with pytest.raises(ConfigError, match="unknown config key"):
        update_from_dotted(config, "nope", 1)
