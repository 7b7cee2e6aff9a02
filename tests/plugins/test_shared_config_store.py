"""Composing copies Hydra's config repository but not its ConfigStore (sweeplab.sweep.shared_config_store):
a copied structured-config source shares the one live store, so a config stored after the copy is found,
as on Hydra's main branch; a pickled source still carries its store (a worker process that never ran
register_configs unpickles it whole: the joblib and submitit launchers)."""
import copy
import pickle

from hydra._internal.core_plugins import structured_config_source
from hydra.core.config_store import ConfigStore

from conftest import compose_train
from sweeplab.sweep.shared_config_store import share_config_store


def test_a_copied_source_shares_the_live_store_and_finds_what_is_stored_later():
    share_config_store()  # train.py's register_configs has done it (conftest); a second call changes nothing
    source = structured_config_source.StructuredConfigSource(provider="test", path="structured://")
    copied = copy.deepcopy(source)
    assert copied is not source and copied.path == source.path
    ConfigStore.instance().store(name="stored_after_the_copy", node={"x": 1}, group="sweeplab_test_group")
    assert copied.store is ConfigStore.instance()
    assert copied.is_config("sweeplab_test_group/stored_after_the_copy")
    assert copied.load_config("sweeplab_test_group/stored_after_the_copy").config == {"x": 1}
    assert "store" in vars(pickle.loads(pickle.dumps(source)))


def test_train_py_still_composes_from_its_structured_schema():
    cfg = compose_train("optimizer=adam", "data=synthetic")
    assert cfg.optimizer.default_lr == 0.001 and cfg.lr == 0.001 and cfg.data.n_train > 0
