"""design.md's public contract, run as a user would: in fresh processes."""
import os
import subprocess
import sys
import textwrap

import torch

PLUGIN = textwrap.dedent('''
    import hashlib
    import torch, torch.nn.functional as F
    import mcrgraph

    class MyMCR(mcrgraph.MCR):
        name = "my-mcr"
        modalities = ("audio", "text")
        dim = 16
        def encode(self, modality, items):
            rows = []
            for item in items:
                seed = int(hashlib.sha256(item.split("#")[0].encode()).hexdigest()[:8], 16)
                rows.append(torch.randn(16, generator=torch.Generator().manual_seed(seed + (modality == "audio"))))
            return F.normalize(torch.stack(rows), dim=1)

    @mcrgraph.hookimpl
    def register_mcrs(register):
        register(MyMCR())
''')

TRAIN = PLUGIN + textwrap.dedent('''
    import sys
    mcrgraph.register(sys.modules[__name__])
    texts = [f"c{i}#{j}" for j in range(4) for i in range(50)]
    sounds = [f"c{i}#9" for i in range(50)]
    images = [f"c{i}#8" for i in range(50)]
    space = mcrgraph.connect("synth-clip", "my-mcr", via="text", items=texts,
                             memories={"image": images, "audio": sounds}, method="c-mcr", epochs=3)
    assert isinstance(space, mcrgraph.MCR) and space.name == "synth-clip+my-mcr"
    assert "my-mcr" in [m.name for m in mcrgraph.list_mcrs()] and mcrgraph.get_mcr("my-mcr").dim == 16
    g = mcrgraph.graph()
    path = g.plan("audio", "image")
    print(path.describe())
    scores = g.similarity("audio", ["c1", "c2", "c3"], "image", ["c1", "c2"])
    assert scores.shape == (3, 2)
    torch.save(scores, sys.argv[1])
''')

RELOAD = PLUGIN + textwrap.dedent('''
    import sys
    mcrgraph.register(sys.modules[__name__])
    g = mcrgraph.graph()
    assert "synth-clip+my-mcr" in g.spaces
    torch.save(g.similarity("audio", ["c1", "c2", "c3"], "image", ["c1", "c2"]), sys.argv[1])
''')


def run(code, *args, env):
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=300)


def test_contract_in_new_processes(tmp_path, store):
    env = {**os.environ, "MCRGRAPH_HOME": str(store)}
    first = run(TRAIN, str(tmp_path / "a.pt"), env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "audio@my-mcr -> synth-clip+my-mcr <- image@synth-clip"
    second = run(RELOAD, str(tmp_path / "b.pt"), env=env)
    assert second.returncode == 0, second.stderr
    a, b = (torch.load(tmp_path / f, weights_only=True) for f in ("a.pt", "b.pt"))
    assert torch.equal(a, b)  # the stored connector reloads bit-identical


def test_cli_main_module_runs(store):
    env = {**os.environ, "MCRGRAPH_HOME": str(store)}
    out = subprocess.run([sys.executable, "-m", "mcrgraph", "plugins"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "synth-clip" in out.stdout


def test_readme_python_example_runs(store):
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    env = {**os.environ, "MCRGRAPH_HOME": str(store)}
    env.pop("MCRGRAPH_SYNTHETIC")  # as a user runs it: no synthetic spaces
    demo = "import mcrgraph; mcrgraph.connect('mini-clip', 'mini-clap', via='text', epochs=1)"  # what make demo stores
    for snippet in (demo, code):
        out = subprocess.run([sys.executable, "-c", snippet], env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["audio@my-mcr -> mini-clip+my-mcr <- image@mini-clip"] * 2


def test_reliability_doc_names_only_real_tests():
    import re
    from pathlib import Path

    root = Path(__file__).parents[1]
    doc = (root / "docs" / "reliability.md").read_text()
    source = "".join(p.read_text() for p in (root / "tests").glob("test_*.py"))
    missing = [n for n in set(re.findall(r"::(test_\w+)", doc)) if f"def {n}(" not in source]
    assert not missing
