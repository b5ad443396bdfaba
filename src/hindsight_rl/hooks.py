"""Project hooks."""

from __future__ import annotations

from typing import Any

import torch
from kedro.framework.hooks import hook_impl


class TorchThreadsHook:
    """Pins torch's intra-op threads before any node runs (``runtime.torch_threads``).

    The networks here are small: one thread per process wastes less time in thread
    hand-offs than two, and leaves the other core to a parallel runner's second worker.
    """

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        threads = context.params.get("runtime", {}).get("torch_threads")
        if threads:
            torch.set_num_threads(int(threads))
