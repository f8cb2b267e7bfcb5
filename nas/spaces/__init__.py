"""Search spaces by name. A space is a few pure functions over immutable architecture values."""

from nas.spaces.nb201 import NB201Arch, NB201Space, NetworkConfig

SPACES = {"nb201": NB201Space()}

__all__ = ["SPACES", "NB201Arch", "NB201Space", "NetworkConfig"]
