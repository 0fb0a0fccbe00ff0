"""Rows every evaluation world runs the same way (``eval mini``, ``eval hard``): the mcrgraph
preset's earlier choices and the candidates it was judged against (issue 25), so that a default is
compared with what it replaced on every world, under one name. Row -> ``connect`` options."""
from __future__ import annotations

BEFORE = dict(bridge_neighbours=0.0, bridge_reach=0)  # preset mcrgraph of issue 16: bridging at τ 0.05, no reach
NO_MEMORY = dict(memory_weight=0.0)  # rows measured before preset mcrgraph read out over the memories keep it off

CMCR_PRESET_ROWS = {
    "C-MCR, preset mcrgraph before issue 25 (τ 0.05, no reach)": dict(method="c-mcr", preset="mcrgraph", **BEFORE, **NO_MEMORY),
    "C-MCR, preset mcrgraph with reach 10 (issue 25's first default)": dict(method="c-mcr", preset="mcrgraph", bridge_reach=10, **NO_MEMORY),
    "C-MCR, preset mcrgraph with reach 0 (10 neighbours only)": dict(method="c-mcr", preset="mcrgraph", bridge_reach=0, **NO_MEMORY),
    "C-MCR, preset mcrgraph with reach 30 (a count: issue 25's second default)": dict(method="c-mcr", preset="mcrgraph", bridge_reach=30, **NO_MEMORY),
    "C-MCR, preset mcrgraph without the memory readout (reach 2.5%: its default until the memory readout)":
        dict(method="c-mcr", preset="mcrgraph", **NO_MEMORY),
}
EXMCR_PRESET_ROWS = {
    "Ex-MCR, preset mcrgraph before issue 25 (τ 0.05, no reach)": dict(method="ex-mcr", preset="mcrgraph", **BEFORE, **NO_MEMORY),
    "Ex-MCR, preset mcrgraph with reach 30 (C-MCR's default)": dict(method="ex-mcr", preset="mcrgraph", bridge_reach=30, **NO_MEMORY),
    "Ex-MCR, preset mcrgraph with reach 0 (10 neighbours only)": dict(method="ex-mcr", preset="mcrgraph", bridge_reach=0, **NO_MEMORY),
    "Ex-MCR, preset mcrgraph with reach 10 (its default until the real-voices world)":
        dict(method="ex-mcr", preset="mcrgraph", bridge_reach=10, **NO_MEMORY),
}
#: issue 25 item 3: Ex-MCR's own cross readout at encode time, blended with the mapped item (lost; opt-in; measured
#: on the preset before its memory readout, which these rows keep off)
EXMCR_CROSS_ROWS = {
    "Ex-MCR, preset mcrgraph + cross readout 0.5 (τ1 0.01)": dict(method="ex-mcr", preset="mcrgraph", cross_weight=0.5, **NO_MEMORY),
    "Ex-MCR, preset mcrgraph + cross readout 0.5, 10 neighbours": dict(method="ex-mcr", preset="mcrgraph", cross_weight=0.5, cross_neighbours=10.0, **NO_MEMORY),
    "Ex-MCR, preset mcrgraph + cross readout 0.5, 10 neighbours, reach 10":
        dict(method="ex-mcr", preset="mcrgraph", cross_weight=0.5, cross_neighbours=10.0, cross_reach=10, **NO_MEMORY),
    "Ex-MCR, preset mcrgraph + cross readout 1.0, 10 neighbours, reach 10":
        dict(method="ex-mcr", preset="mcrgraph", cross_weight=1.0, cross_neighbours=10.0, cross_reach=10, **NO_MEMORY),
}
#: issue 25 item 3: Ex-MCR's memory readout at encode time (a leaf item's neighbours in the leaf's memory, as the
#: connector maps them, blended with the item's own encoding); C-MCR's preset has it (0.3, 5 neighbours), Ex-MCR's not:
#: it loses the hard world's weak-parent tier beyond the spread (docs/results/exmcr-memory-readout)
EXMCR_MEMORY_ROWS = {
    "Ex-MCR, preset mcrgraph + memory readout 0.3 (5 neighbours)": dict(method="ex-mcr", preset="mcrgraph", memory_weight=0.3),
    "Ex-MCR, preset mcrgraph with memory readout 0.5 (5 neighbours)": dict(method="ex-mcr", preset="mcrgraph", memory_weight=0.5),
}
