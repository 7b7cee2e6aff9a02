"""Composing copies Hydra's config repository but not its ConfigStore (sweeplab.sweep.shared_config_store):
a copied structured-config source reads the one live store, so a config stored after the copy is found,
as on Hydra's main branch."""
import copy

from hydra._internal.core_plugins import structured_config_source
from hydra.core.config_store import ConfigStore

from conftest import compose_train
from sweeplab.sweep.shared_config_store import share_config_store


def test_a_copied_source_shares_the_live_store_and_finds_what_is_stored_later():
    share_config_store()  # train.py's register_configs has done it (conftest); a second call changes nothing
    source = structured_config_source.StructuredConfigSource(provider="test", path="structured://")
    assert "store" not in vars(source)  # nothing of the store for a deepcopy to duplicate
    copied = copy.deepcopy(source)
    ConfigStore.instance().store(name="stored_after_the_copy", node={"x": 1}, group="sweeplab_test_group")
    assert copied.store is ConfigStore.instance()
    assert copied.is_config("sweeplab_test_group/stored_after_the_copy")
    assert copied.load_config("sweeplab_test_group/stored_after_the_copy").config == {"x": 1}


def test_train_py_still_composes_from_its_structured_schema():
    cfg = compose_train("optimizer=adam", "data=synthetic")
    assert cfg.optimizer.default_lr == 0.001 and cfg.lr == 0.001 and cfg.data.n_train > 0
