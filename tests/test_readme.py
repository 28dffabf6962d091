"""The README opens with exactly two commands (run the main job, run the tests) and CI runs the second."""

import pathlib
import re
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _leading_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    before_first_section = text.split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)\n```", before_first_section, flags=re.S)


def test_readme_opens_with_exactly_two_one_line_commands():
    commands = _leading_commands()
    assert len(commands) == 2, commands
    install_and_run, install_and_test = commands
    assert all("\n" not in c for c in commands), commands
    assert install_and_run.startswith("python3 -m venv") and install_and_run.endswith("tfp-flows train")
    assert install_and_test.startswith("python3 -m venv") and '".[test]"' in install_and_test
    assert "pytest tests" in install_and_test


def test_ci_runs_the_readmes_test_command():
    extracted = subprocess.run(
        ["bash", "-c", "awk '/^```bash$/ { n++; getline; if (n == 2) { print; exit } }' README.md"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert extracted == _leading_commands()[1]
    assert "awk '/^```bash$/" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
