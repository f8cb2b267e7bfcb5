"""The DARTS cell space (Liu et al. 2019): the ``Genotype`` value, the space's functions, the network."""

from nas.spaces.darts.arch import DARTS_V1, DARTS_V2, PRIMITIVES, STEPS, Genotype, decode, encode
from nas.spaces.darts.space import DartsSpace

__all__ = ["DARTS_V1", "DARTS_V2", "PRIMITIVES", "STEPS", "DartsSpace", "Genotype", "decode", "encode"]
