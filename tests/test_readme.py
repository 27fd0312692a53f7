"""The README's Python examples run as written."""
import os
import re

import pytest

README = os.path.join(os.path.dirname(__file__), "..", "README.md")


def _blocks():
    text = open(README).read()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("i", range(len(_blocks())))
def test_readme_python_block_runs(i, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(_blocks()[i], f"README block {i}", "exec"), {"__name__": "__readme__"})


def test_readme_starts_with_the_two_setup_commands():
    text = open(README).read()
    first = re.search(r"```bash\n(.*?)```", text, flags=re.S).group(1).splitlines()
    assert first[0].startswith('pip install ".[plot]" && gradfit train')
    assert first[1].startswith('pip install -e ".[test]" && python -m pytest -q')
    ci = open(os.path.join(os.path.dirname(__file__), "..", ".ci", "run")).read()
    assert 'pip install -e ".[test]" && python -m pytest -q' in ci
