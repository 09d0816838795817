"""Keeping freed memory in the process during CPU training."""

from __future__ import annotations

import contextlib
import io
import platform
import sys

import pytest

from reactivate.cli import main
from reactivate.training import keep_freed_memory
from reactivate.training.memory import ENV_VAR

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


def test_applies_on_glibc(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert keep_freed_memory(16) is GLIBC
    assert keep_freed_memory() is GLIBC


def test_zero_turns_it_off(monkeypatch):
    assert keep_freed_memory(0) is False
    monkeypatch.setenv(ENV_VAR, "0")
    assert keep_freed_memory() is False


@pytest.mark.parametrize("value", [-1, 1.5, True, "256", 2048])
def test_rejects_bad_pad(value):
    with pytest.raises(ValueError, match="pad_mib"):
        keep_freed_memory(value)


@pytest.mark.parametrize("text", ["lots", "-3", "2048", "\uff19"])
def test_rejects_bad_environment_value(monkeypatch, text):
    monkeypatch.setenv(ENV_VAR, text)
    with pytest.raises(ValueError, match=ENV_VAR):
        keep_freed_memory()


def test_empty_environment_value_default(monkeypatch):
    monkeypatch.setenv(ENV_VAR, " ")
    assert keep_freed_memory() is GLIBC


def test_cli_bad_environment_value_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_VAR, "lots")
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        code = main(["--kernels", "eager", "train", "--dataset", "digits", "--epochs", "1", "--out", str(tmp_path / "run")])
    assert code == 1
    lines = stderr.getvalue().strip().splitlines()
    assert len(lines) == 1, lines
    assert ENV_VAR in lines[0]
    assert not (tmp_path / "run").exists()
