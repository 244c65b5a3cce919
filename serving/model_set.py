"""The models one server serves, by name, kept as the model config file says: added, reconfigured, removed.

As TF Serving does when its model config file changes, a new entry starts a
model (its versions load over the next polls, NOT_FOUND until it is routed,
UNAVAILABLE until one is loaded), an entry that is gone stops its model (its
requests get NOT_FOUND from then on), and a changed entry takes its new
policy and labels. An entry whose base_path changed is refused, the whole
file with it: the model would be gone while the versions at the new path
load, so moving a model is removing its entry and adding it back.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from serving.model_config import ModelConfig
from serving.model_router import ModelRouter
from serving.served_model import ServedModel, Shared

log = logging.getLogger(__name__)


class ModelSet:
    """The served models by name, and the router that answers requests from them."""

    def __init__(self, shared: Shared, router: ModelRouter) -> None:
        self._shared = shared
        self._router = router
        self._models: dict[str, ServedModel] = {}

    @property
    def models(self) -> Mapping[str, ServedModel]:
        """The served models by name, in the order they were configured."""
        return dict(self._models)

    def apply(self, configs: Sequence[ModelConfig], source: str | None = None) -> None:
        """Serves exactly these models from now on; a ValueError (naming `source`) changes nothing.

        `source` is the model config file a change comes from, for the logs; None at start-up.
        """
        for config in configs:
            served = self._models.get(config.name)
            if served is not None and served.config.base_path != config.base_path:
                raise ValueError(
                    f"model config file {source}, model '{config.name}': base_path changed from "
                    f"{served.config.base_path} to {config.base_path} while serving; remove the entry, "
                    "then add it back with the new base_path"
                )
        wanted = {config.name: config for config in configs}
        for name in [name for name in self._models if name not in wanted]:
            self._remove(name, source)
        for name, config in wanted.items():
            if name in self._models:
                self._models[name].reconfigure(config)
            else:
                self._models[name] = ServedModel(config, self._shared)
                if source is not None:
                    log.info("model config %s: now also serving model '%s' from %s", source, name, config.base_path)
        self._router.serve({name: model.api for name, model in self._models.items()})

    def poll(self, address: str) -> None:
        """Polls every model for new versions in turn; each logs its own surprises."""
        for model in list(self._models.values()):
            model.poll(address)

    def close(self, address: str) -> None:
        """Stops every model; call once no request is answered any more."""
        for model in self._models.values():
            model.close()
            log.info("stopped serving model '%s' on %s", model.name, address)

    def _remove(self, name: str, source: str | None) -> None:
        model = self._models.pop(name)
        self._router.serve({kept: served.api for kept, served in self._models.items()})
        model.close()
        log.info("model config %s: model '%s' removed; requests for it now get NOT_FOUND", source, name)
