"""The search space: primitives, the safe parser, canonical form, fingerprint and screening.

Everything here is symbolic except :mod:`afos.space.lower` and :mod:`afos.space.probe`, which evaluate
expressions numerically with torch; they are imported lazily so that parsing (and the CLI's error path)
never pays torch's import time.
"""

from afos.space.parse import parse
from afos.space.primitives import PRIMITIVE_SETS, PRIMITIVES, Primitive, X, primitive_set

__all__ = ["parse", "PRIMITIVES", "PRIMITIVE_SETS", "Primitive", "X", "primitive_set"]
