"""One-shot architecture search by gradient: a supernet whose edges mix every candidate op, trained together with
the architecture parameters α, ending by deriving one discrete architecture, the value every other search returns.

    >>> from nas.oneshot import OneShotConfig, make_search
    >>> from nas.spaces.nb201 import NetworkConfig
    >>> search = make_search("gdas", "nb201", NetworkConfig(8, 1, 1, 10), OneShotConfig(epochs=2), seed=0)
    >>> # for epoch in range(2): metrics = search.run_epoch(train, val, epoch)
    >>> type(search.derive()).__name__
    'NB201Arch'

Methods: ``darts`` and ``darts2`` (first and second order, Liu et al. 2019), ``gdas`` (Dong & Yang 2019), ``snas``
(Xie et al. 2019); weight sharing (``make_weight_sharing``): ``spos``, ``rsws``, ``enas``, ``smash``. Spaces: ``nb201`` (NAS-Bench-201's cell) and ``darts`` (DARTS's normal and reduction cells).
"""

from __future__ import annotations

from nas.oneshot.base import SUPERNETS, OneShotConfig, OneShotSearch
from nas.oneshot.darts import DartsFirstOrder, DartsSecondOrder
from nas.oneshot.enas import Enas
from nas.oneshot.gdas import Gdas
from nas.oneshot.hypernet import Smash
from nas.oneshot.single_path import RandomSearchWeightSharing, Spos, WeightSharingSearch
from nas.oneshot.snas import Snas
from nas.spaces.nb201 import NetworkConfig

METHODS: dict[str, type[OneShotSearch]] = {"darts": DartsFirstOrder, "darts2": DartsSecondOrder, "gdas": Gdas,
                                           "snas": Snas}
# Weight sharing (a supernet trained once, then an estimator any strategy searches with): not OneShotSearch's.
WEIGHT_SHARING: dict[str, type[WeightSharingSearch]] = {"spos": Spos, "rsws": RandomSearchWeightSharing,
                                                        "enas": Enas, "smash": Smash}
SPACES = tuple(SUPERNETS)


def make_search(method: str, space: str, network: NetworkConfig, config: OneShotConfig, seed: int,
                device: str = "cpu") -> OneShotSearch:
    """A one-shot search by name; raises ValueError naming the allowed methods or spaces."""
    if method not in METHODS:
        raise ValueError(f"unknown one-shot method {method!r}; allowed: {', '.join(METHODS)}")
    if space not in SUPERNETS:
        raise ValueError(f"unknown one-shot space {space!r}; allowed: {', '.join(SUPERNETS)}")
    return METHODS[method](space, network, config, seed, device)


def make_weight_sharing(method: str, space: str, network: NetworkConfig, config: OneShotConfig, seed: int,
                        device: str = "cpu", **options) -> WeightSharingSearch:
    """A weight-sharing trainer by name; raises ValueError naming the allowed methods."""
    if method not in WEIGHT_SHARING:
        raise ValueError(f"unknown weight-sharing method {method!r}; allowed: {', '.join(WEIGHT_SHARING)}")
    return WEIGHT_SHARING[method](space, network, config, seed, device, **options)


__all__ = ["METHODS", "SPACES", "WEIGHT_SHARING", "NetworkConfig", "OneShotConfig", "OneShotSearch", "make_search",
           "make_weight_sharing"]
