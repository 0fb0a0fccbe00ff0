import mcrgraph
from conftest import FakeMCR


@mcrgraph.hookimpl
def register_mcrs(register):
    register(FakeMCR("half-ok", ("text",)))
    raise RuntimeError("second model failed")
