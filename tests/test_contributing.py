"""CONTRIBUTING.md's worked examples run: a new loss with a weight map and a new 2-D dataset, each one module and
one registry entry, reach the setup, the trainer, the prepare command and the bundles' datalist builder."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from monai_imbalance.apps import registry as dataset_registry
from monai_imbalance.engines import registry as loss_registry

GUIDE = Path(__file__).resolve().parents[1] / "CONTRIBUTING.md"


def _blocks() -> tuple[dict[str, str], list[str]]:
    files, snippets = {}, []
    for block in re.findall(r"```python\n(.*?)```", GUIDE.read_text(), flags=re.S):
        first = block.splitlines()[0]
        if first.startswith("# file: "):
            files[first[len("# file: "):].strip()] = block
        else:
            snippets.append(block)
    return files, snippets


@pytest.fixture
def example_package(tmp_path, monkeypatch):
    """The guide's modules written into a package on sys.path; the registries restored afterwards."""
    files, snippets = _blocks()
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / "__init__.py").touch()
        path.write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    losses, datasets = dict(loss_registry.LOSSES), dict(dataset_registry.DATASETS)
    yield files, snippets
    loss_registry.LOSSES.clear()
    loss_registry.LOSSES.update(losses)
    dataset_registry.DATASETS.clear()
    dataset_registry.DATASETS.update(datasets)
    for module in [m for m in sys.modules if m.startswith("contrib_example")]:
        del sys.modules[module]


def test_the_guide_has_both_examples_each_one_module_plus_one_entry():
    files, snippets = _blocks()
    assert set(files) == {"contrib_example/edge_weighted_ce.py", "contrib_example/register_loss.py",
                          "contrib_example/example2d.py"}
    assert len(snippets) == 2


def test_the_guides_snippets_run(example_package, capsys):
    _, snippets = example_package
    for snippet in snippets:
        exec(compile(snippet, str(GUIDE), "exec"), {})
    printed = capsys.readouterr().out
    assert "EdgeWeightMapd {'weight_map': 'label_weight'}" in printed
    assert "8 2 True" in printed and "\n2\n" in printed


def test_the_example_loss_trains_through_the_trainer_with_its_map(example_package):
    import contrib_example.register_loss  # noqa: F401
    from contrib_example.edge_weighted_ce import EdgeWeightedCELoss, edge_weight_map
    from monai.data import DataLoader, Dataset
    from monai.transforms import Compose

    from monai_imbalance.engines import SegmentationSetup, SupervisedTrainerWithLossInputs

    label = np.zeros((1, 8, 8), np.int64)
    label[0, 2:5, 2:5] = 1
    weights = edge_weight_map(label, width=1.0, w0=4.0)[0]
    assert weights[3, 3] == 5.0 and weights[0, 7] == 1.0 and weights[1, 3] == 5.0  # 1 px from the edge: weighted
    setup = SegmentationSetup(loss="edge_ce", crop="none", out_channels=2, loss_params={"edge_ce": {"w0": 8.0}})
    assert isinstance(setup.loss, EdgeWeightedCELoss) and setup.map_transforms[0].w0 == 8.0
    seen = []
    hook = setup.loss.register_forward_pre_hook(lambda m, a, kw: seen.append(kw["weight_map"]), with_kwargs=True)
    items = [{"image": np.random.default_rng(i).random((1, 8, 8)).astype(np.float32), "label": label}
             for i in range(2)]
    loader = DataLoader(Dataset(items, Compose(setup.map_transforms)), batch_size=2)
    net = torch.nn.Conv2d(1, 2, 3, padding=1)
    trainer = SupervisedTrainerWithLossInputs(device=torch.device("cpu"), max_epochs=1, train_data_loader=loader,
                                              network=net, optimizer=torch.optim.SGD(net.parameters(), lr=0.1),
                                              loss_function=setup.loss_function, loss_inputs=setup.loss_inputs)
    trainer.run()
    hook.remove()
    assert len(seen) == 1 and float(seen[0].max()) == 9.0  # the map of the batch, w0 from loss_params
    # without the map the loss computes the same one from the label
    logits = torch.randn(2, 2, 8, 8)
    target = torch.as_tensor(label)[None].repeat(2, 1, 1, 1)
    assert torch.allclose(setup.loss(logits, target), setup.loss(logits, target, weight_map=seen[0]))


def test_the_example_dataset_count_check_names_its_override(example_package, tmp_path):
    from contrib_example.example2d import write_example2d_lookalike

    from monai_imbalance.apps.checks import DatasetLayoutError

    root = write_example2d_lookalike(tmp_path / "e2d", num_images=5)
    (root / "SYNTHETIC.txt").unlink()
    with pytest.raises(DatasetLayoutError, match="found 5 image/mask pairs, expected 100.*--no-count-check"):
        dataset_registry.scan_dataset("example2d", root)
    assert len(dataset_registry.scan_dataset("example2d", root, expected_count=None).sections["training"]) == 4
