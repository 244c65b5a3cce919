"""The versions of one model under a base directory, loaded and swapped like TF Serving.

TFX's Pusher copies each blessed model to `<base>/<version>/` in place, file by
file, so a version directory can be seen half-written. A version is therefore
loaded only once it is complete (its `saved_model.pb` exists) and its files have
not changed between two consecutive polls; a version that still fails to load is
logged and skipped, and the previously served one keeps serving. It is tried
again only once its files change, so a broken push does not cost a reload on
every poll.

Like TF Serving's version policies the store serves the newest loadable
versions (`latest`, one by default), all of them, or a `specific` list. A new
version is prepared (its warmup requests replayed) before it is published, and
loaded versions are published as one new immutable mapping, so a swap is a
single assignment: a request that already holds a `LoadedModel` finishes on it
while new requests see the new, warm version. Requests read that mapping and
never take the lock a poll holds while it loads.

TensorFlow loads a private local copy of each version (serving.version_staging),
so a read that hangs costs only the load timeout, after which the version has
failed, not the whole server. And like TF Serving's availability-preserving
policy, a version leaves only once another serves in its place: when the newest
version's folder is deleted, it keeps serving until the next one on disk has
loaded, and it goes without a successor only when no version the policy wants is
left on disk.
"""
from __future__ import annotations

import dataclasses
import logging
import pathlib
import threading
import time
import types
from collections.abc import Callable, Mapping

import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from models.serving_contract import SAVED_MODEL_FILE
from serving.version_scan import Fingerprint, VersionScan, fingerprint
from serving.version_staging import DEFAULT_LOAD_TIMEOUT, Staging

log = logging.getLogger(__name__)


class NoVersionLoaded(Exception):
    """Nothing is loaded yet: the client should retry later (TF Serving: still loading)."""


class VersionNotLoaded(Exception):
    """The requested version is not among the loaded ones."""

    def __init__(self, version: int, loaded: tuple[int, ...]) -> None:
        super().__init__(f"version {version} is not loaded; loaded versions: {list(loaded)}")
        self.version = version
        self.loaded = loaded


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    """One loaded version: its callable signatures and their SignatureDefs for metadata.

    `path` is the version's folder, as logs and metrics name it; `copy` the
    private copy TensorFlow read it from (serving.version_staging), if any.
    """

    version: int
    path: pathlib.Path
    signatures: Mapping[str, tf.types.experimental.ConcreteFunction]
    signature_defs: Mapping[str, meta_graph_pb2.SignatureDef]
    # The restored object owns the variables the signatures read; it lives as long as this does.
    root: object = dataclasses.field(repr=False)
    copy: pathlib.Path | None = None

    @property
    def files(self) -> pathlib.Path:
        """Where to read the version's files without touching a slow or stalled file system again."""
        return self.copy or self.path


@dataclasses.dataclass(frozen=True)
class VersionPolicy:
    """TF Serving's model_version_policy: the newest `latest` versions, exactly the `specific` ones, or all (neither)."""

    latest: int | None = 1
    specific: frozenset[int] | None = None

    def __post_init__(self) -> None:
        if self.latest is not None and self.specific is not None:
            raise ValueError("a version policy is either the latest versions or specific ones, not both")
        if self.latest is not None and self.latest < 1:
            raise ValueError(f"the latest policy keeps at least 1 version, not {self.latest}")
        if self.specific is not None and not self.specific:
            raise ValueError("the specific policy needs at least one version")

    def describe(self) -> str:
        if self.latest is not None:
            return f"latest {self.latest}"
        if self.specific is not None:
            return "specific versions " + ", ".join(map(str, sorted(self.specific)))
        return "all versions"


# Called with each newly loaded version before it is published; raising fails the load.
Prepare = Callable[[LoadedModel], None]
# Told of every load attempt: the version's path, the error's first line (None when loaded) and the seconds it took.
LoadListener = Callable[[pathlib.Path, str | None, float], None]


@dataclasses.dataclass(frozen=True)
class VersionStatus:
    """What became of one version: available, unloaded (error None) or failed to load (error set)."""

    version: int
    available: bool
    error: str | None = None


class ModelStore:
    """Loads the complete versions its policy names under `base_dir` on each `poll()` and serves them by number.

    The policy may be replaced between polls (`policy` is read once per poll).
    Reading a version's files may take `load_timeout` seconds; `close()` removes
    the private copies of the loaded versions. `name`, the model's, starts its
    log lines, since one server may serve several models.
    """

    def __init__(
        self,
        base_dir: pathlib.Path,
        policy: VersionPolicy = VersionPolicy(),
        prepare: Prepare | None = None,
        on_load: LoadListener | None = None,
        load_timeout: float = DEFAULT_LOAD_TIMEOUT,
        name: str = "",
    ) -> None:
        self.base_dir = pathlib.Path(base_dir)
        self._said = f"model '{name}': " if name else ""
        self.policy = policy
        self._scan = VersionScan(self.base_dir)
        self._staging = Staging(load_timeout)
        self._prepare = prepare
        self._on_load = on_load
        self._models: Mapping[int, LoadedModel] = types.MappingProxyType({})
        self._statuses: Mapping[int, VersionStatus] = types.MappingProxyType({})
        self._seen: dict[int, Fingerprint] = {}
        self._failed: dict[int, Fingerprint] = {}
        self._poll_lock = threading.Lock()

    def get(self, version: int | None = None) -> LoadedModel:
        """The requested version, or the newest loaded one when `version` is None."""
        models = self._models
        if not models:
            raise NoVersionLoaded(f"no version loaded yet from {self.base_dir}")
        if version is None:
            return models[max(models)]
        if version not in models:
            raise VersionNotLoaded(version, tuple(sorted(models, reverse=True)))
        return models[version]

    def loaded_versions(self) -> tuple[int, ...]:
        """Loaded version numbers, newest first."""
        return tuple(sorted(self._models, reverse=True))

    def signature_names(self) -> frozenset[str]:
        """The signatures of every loaded version."""
        return frozenset(name for model in self._models.values() for name in model.signatures)

    def statuses(self) -> list[VersionStatus]:
        """Every version this store has loaded, unloaded or failed to load, oldest first."""
        return [status for _, status in sorted(self._statuses.items())]

    def poll(self) -> tuple[int, ...]:
        """Scans the base directory once, loads and unloads versions, and returns the loaded ones."""
        with self._poll_lock:
            policy = self.policy
            current = self._models
            on_disk = self._scan.complete_versions()
            wanted = [version for version in on_disk if policy.specific is None or version in policy.specific]
            kept: dict[int, LoadedModel] = {}
            fingerprints: dict[int, Fingerprint] = {}
            statuses = dict(self._statuses)
            for version in wanted:
                if len(kept) == policy.latest:
                    break
                if version in current:
                    kept[version] = current[version]
                    continue
                fingerprints[version] = stamp = fingerprint(on_disk[version])
                if stamp is None or self._seen.get(version) != stamp:
                    continue  # first sighting, or still being copied in
                if self._failed.get(version) == stamp:
                    continue  # failed before and unchanged since
                model = self._try_load(version, on_disk[version], stamp, statuses)
                if model is not None:
                    kept[version] = model
            self._seen = fingerprints
            kept.update(_until_replaced(current, kept, wanted))
            self._models = types.MappingProxyType(dict(sorted(kept.items(), reverse=True)))
            for version in current.keys() - kept.keys():
                statuses[version] = VersionStatus(version, available=False)
                self._discard(current[version])
                log.info("%sunloaded version %d", self._said, version)
            self._statuses = types.MappingProxyType(statuses)
            return tuple(self._models)

    def close(self) -> None:
        """Removes the private copies of the versions; call once nothing is served any more."""
        self._staging.close()

    def _try_load(
        self, version: int, path: pathlib.Path, stamp: Fingerprint, statuses: dict[int, VersionStatus]
    ) -> LoadedModel | None:
        """The loaded, prepared version, or None with its failure recorded: the served versions stay."""
        started = time.monotonic()
        try:
            model = self._load_and_prepare(version, path)
        except Exception as error:  # any failure to load must leave the served versions intact
            reason = _first_line(error)
            self._told(path, reason, started)
            self._failed[version] = stamp
            statuses[version] = VersionStatus(version, available=False, error=reason)
            log.warning(
                "%scould not load version %d from %s (%s); still serving %s",
                self._said, version, path, reason, list(self.loaded_versions()) or "nothing",
            )
            return None
        self._told(path, None, started)
        self._failed.pop(version, None)
        statuses[version] = VersionStatus(version, available=True)
        log.info("%sloaded version %d from %s", self._said, version, path)
        return model

    def _load_and_prepare(self, version: int, path: pathlib.Path) -> LoadedModel:
        copy = self._staging.copy(version, path)
        try:
            model = _load(version, path, copy)
            if self._prepare is not None:
                self._prepare(model)
        except BaseException:
            self._staging.discard(copy)
            raise
        return model

    def _discard(self, model: LoadedModel) -> None:
        if model.copy is not None:
            self._staging.discard(model.copy)

    def _told(self, path: pathlib.Path, error: str | None, started: float) -> None:
        if self._on_load is not None:
            self._on_load(path, error, time.monotonic() - started)


def _until_replaced(
    current: Mapping[int, LoadedModel], kept: Mapping[int, LoadedModel], wanted: list[int]
) -> dict[int, LoadedModel]:
    """The newest version served now, when it is on its way out and nothing else would serve in its place.

    TF Serving's AvailabilityPreservingPolicy: a version the policy no longer
    wants is unloaded once a wanted one is ready, or at once when none is on
    disk; until then the newest of them keeps serving.
    """
    if kept or not wanted or not current:
        return {}
    newest = max(current)
    return {newest: current[newest]}


def _load(version: int, path: pathlib.Path, copy: pathlib.Path) -> LoadedModel:
    """Restores the SavedModel from its copy and reads its SignatureDefs, which tf.saved_model.load does not expose."""
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((copy / SAVED_MODEL_FILE).read_bytes())
    if not saved_model.meta_graphs:
        raise ValueError(f"{path / SAVED_MODEL_FILE} holds no MetaGraph")
    root = tf.saved_model.load(str(copy))
    signatures = dict(root.signatures)
    if not signatures:
        raise ValueError(f"{path} has no serving signatures")
    return LoadedModel(
        version=version,
        path=path,
        signatures=types.MappingProxyType(signatures),
        signature_defs=types.MappingProxyType(dict(saved_model.meta_graphs[0].signature_def)),
        root=root,
        copy=copy,
    )


def _first_line(error: BaseException) -> str:
    """The first non-empty line of an error, since TensorFlow's messages run on for pages."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
