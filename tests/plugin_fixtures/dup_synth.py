import mcrgraph
from conftest import FakeMCR


@mcrgraph.hookimpl
def register_mcrs(register):
    register(FakeMCR("synth-clip", ("text",)))
