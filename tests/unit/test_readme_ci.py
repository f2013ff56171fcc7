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


def test_ci_runs_the_readme_test_command_verbatim():
    script = (REPO / ".ci/run").read_text()
    extracted = subprocess.run(
        ["bash", "-c", r"sed -n 's/^    \(pip install torch==.*pytest.*\)$/\1/p' README.md | tail -n 1"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert extracted == _readme_commands()[1]
    assert 'bash -c "$cmd"' in script


def test_platform_is_a_source_root_not_a_package():
    assert not (REPO / "platform/__init__.py").exists()
    import platform

    assert hasattr(platform, "system")  # stdlib platform is not shadowed
