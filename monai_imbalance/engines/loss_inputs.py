"""Deprecated: :class:`LossWithBatchKeys`, a loss wrapper that reads batch keys through a handler.

Use :class:`monai_imbalance.engines.SupervisedTrainerWithLossInputs` (``loss_inputs={"weight_map": "label_weight"}``)
instead: the trainer passes the keys itself, so no handler can be forgotten. ``LossWithBatchKeys`` works as before
for one release (it needs to be both the ``loss_function`` and one of the engine's handlers) and warns when built.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from monai.engines.utils import IterationEvents
from monai.utils import CommonKeys
from torch.nn.modules.loss import _Loss

__all__ = ["LossWithBatchKeys"]


class LossWithBatchKeys(_Loss):
    """Deprecated (use :class:`~monai_imbalance.engines.SupervisedTrainerWithLossInputs`): a loss that receives
    extra batch keys (weight maps, distance maps) from the engine running it.

    As ``loss_function`` of a ``SupervisedTrainer`` and one of its ``train_handlers``, every call
    ``loss(pred, label)`` becomes ``loss(pred, label, **{arg: batch[key]})`` for the current batch. Attached to an
    evaluator (``val_handlers``) it computes the loss after each forward pass, under ``torch.no_grad()``, and
    stores it in the output under ``output_key``. Called directly, it passes its keyword arguments through, so
    ``loss(pred, label, weight_map=w)`` works outside an engine too.

    Tensors are moved to the prediction's device (``non_blocking`` as the engine); ``MetaTensor`` batch values are
    passed as plain tensors.

    Args:
        loss: the loss to call, e.g. :class:`monai_imbalance.losses.DilatedBalancedCELoss`.
        extra_keys: batch keys to pass: ``{argument: key}`` as keyword arguments (e.g.
            ``{"weight_map": "label_weight"}``), or a key / sequence of keys as positional arguments after the
            label (the convention of MONAI's ``PrepareBatchExtraInput``).
        output_key: where an evaluator stores the loss in ``engine.state.output``.

    Raises:
        RuntimeError (when called): inside no engine iteration (not attached) and without the arguments given.
        KeyError (when called): a key missing from the batch (the message lists the batch's keys).

    Example:
        >>> import torch
        >>> from monai_imbalance.losses import DilatedBalancedCELoss
        >>> loss = LossWithBatchKeys(DilatedBalancedCELoss(softmax=True, to_onehot_y=True, radius=1),
        ...                          extra_keys={"weight_map": "label_weight"})
        >>> pred, label = torch.zeros(1, 2, 5, 5), torch.zeros(1, 1, 5, 5)
        >>> value = loss(pred, label, weight_map=torch.ones(1, 1, 5, 5))  # explicit arguments, no engine
    """

    def __init__(
        self,
        loss: torch.nn.Module | Any,
        extra_keys: str | Sequence[str] | Mapping[str, str],
        output_key: str = CommonKeys.LOSS,
    ) -> None:
        super().__init__()
        warnings.warn(
            "LossWithBatchKeys is deprecated and will be removed in the next release: use "
            "monai_imbalance.engines.SupervisedTrainerWithLossInputs(loss_inputs={argument: batch key}) instead.",
            DeprecationWarning,
            stacklevel=2,
        )
        if not callable(loss):
            raise TypeError(f"loss must be callable (a loss module), got {type(loss).__name__}.")
        if isinstance(extra_keys, Mapping):
            self.kwarg_keys = {str(k): v for k, v in extra_keys.items()}
            self.arg_keys: tuple = ()
        elif isinstance(extra_keys, str):
            self.kwarg_keys, self.arg_keys = {}, (extra_keys,)
        else:
            self.kwarg_keys, self.arg_keys = {}, tuple(extra_keys)
        if not self.kwarg_keys and not self.arg_keys:
            raise ValueError("extra_keys must name at least one batch key.")
        self.loss = loss
        self.output_key = output_key
        self._batch: Any = None
        self._non_blocking = False

    def attach(self, engine: Any) -> None:
        """Read the batch of every iteration of ``engine``; in an engine that is no ``monai.engines.Trainer``
        (an evaluator), also compute the loss after the forward pass and store it under ``output_key``."""
        from ignite.engine import Events
        from monai.engines import Trainer

        engine.add_event_handler(Events.ITERATION_STARTED, self._remember_batch)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._forget_batch)
        if not isinstance(engine, Trainer):  # a trainer calls its loss_function itself
            engine.add_event_handler(IterationEvents.FORWARD_COMPLETED, self._evaluate)

    def _remember_batch(self, engine: Any) -> None:
        self._batch = engine.state.batch
        self._non_blocking = bool(getattr(engine, "non_blocking", False))

    def _forget_batch(self, engine: Any) -> None:
        self._batch = None

    def _evaluate(self, engine: Any) -> None:
        output = engine.state.output
        with torch.no_grad():
            output[self.output_key] = self(output[CommonKeys.PRED], output[CommonKeys.LABEL]).detach()

    def _fetch(self, key: str, device: torch.device) -> Any:
        batch = self._batch
        if not isinstance(batch, Mapping):
            raise RuntimeError(
                f"LossWithBatchKeys needs the batch key {key!r} but runs outside an engine iteration with a dictionary "
                "batch: list it in the engine's handlers (train_handlers / val_handlers, or call .attach(engine)), "
                "or pass the argument explicitly."
            )
        if key not in batch:
            raise KeyError(f"batch has no key {key!r} for the loss; batch keys: {sorted(map(str, batch))}.")
        value = batch[key]
        if isinstance(value, torch.Tensor):
            value = value.as_tensor() if hasattr(value, "as_tensor") else value
            value = value.to(device=device, non_blocking=self._non_blocking)
        return value

    def forward(self, input: torch.Tensor, target: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        """``loss(input, target, *batch_args, **batch_kwargs)``; arguments given here take precedence. ``input`` may
        be a list of deep-supervision heads (for a loss that takes one, e.g. ``DeepSupervisionLoss``): the maps go
        to the device of the target."""
        device = target.device
        if not args:
            args = tuple(self._fetch(key, device) for key in self.arg_keys)
        for name, key in self.kwarg_keys.items():
            if name not in kwargs:
                kwargs[name] = self._fetch(key, device)
        return self.loss(input, target, *args, **kwargs)
