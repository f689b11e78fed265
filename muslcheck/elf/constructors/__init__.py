"""The functions a shared object's own initialisation calls through its PLT or GOT, read from its code
(``reader.py``), one module per architecture (``machines.py``)."""

from muslcheck.elf.constructors.machines import MACHINES
from muslcheck.elf.constructors.reader import (
    MAX_DEPTH,
    MAX_INIT_FUNCTIONS,
    MAX_INSTRUCTIONS,
    NONE,
    ConstructorCalls,
    read_constructor_calls,
)

__all__ = ["MACHINES", "MAX_DEPTH", "MAX_INIT_FUNCTIONS", "MAX_INSTRUCTIONS", "NONE", "ConstructorCalls",
           "read_constructor_calls"]
