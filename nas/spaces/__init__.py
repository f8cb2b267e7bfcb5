"""Search spaces by name. A space is a few pure functions over immutable architecture values."""

from nas.spaces.darts import DartsSpace, Genotype
from nas.spaces.macro import Layer, MacroArch, MacroSpace
from nas.spaces.nb201 import NB201Arch, NB201Space, NetworkConfig

SPACES = {"nb201": NB201Space(), "macro": MacroSpace(), "darts": DartsSpace()}

__all__ = ["SPACES", "DartsSpace", "Genotype", "Layer", "MacroArch", "MacroSpace", "NB201Arch", "NB201Space",
           "NetworkConfig"]
