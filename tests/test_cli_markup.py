"""Help and messages keep their words: Rich reads `[word]` as markup, so every help text and
message that may hold brackets (package extras, paths, user input) is escaped."""

from __future__ import annotations

import re
from types import SimpleNamespace

import click
import pytest
import typer
from typer.testing import CliRunner

from tests.clipmaker import ClipSpec, make_clip
from vdenoise.cli import app
from vdenoise.cli.support import fail
from vdenoise.errors import UsageError
from vdenoise.progress import BatchProgress, ConsoleObserver

runner = CliRunner()
WIDE = {"COLUMNS": "200", "TERMINAL_WIDTH": "200"}
BRACKETED = re.compile(r"[\w.'/-]*\[[\w/ ,.-]+\][\w.'/-]*")


def _commands(group: click.Group, path: tuple[str, ...] = ()):
    yield path, group
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


def _words(command: click.Command) -> list[str]:
    """The bracketed words of a command's own help texts, as a user should read them."""
    texts = [command.help or ""] + [getattr(p, "help", None) or "" for p in command.params]
    return [w.replace("\\[", "[") for t in texts for w in BRACKETED.findall(t.replace("\\[", "["))]


def _flat(text: str) -> str:
    return re.sub(r"[\s│]+", "", text)


COMMANDS = list(_commands(typer.main.get_command(app)))


def test_some_help_holds_brackets():
    """The check below has something to check: `--cluster` names the `cluster` extra."""
    assert "'vdenoise[cluster]'" in [w for _, c in COMMANDS for w in _words(c)]


@pytest.mark.parametrize("path, command", COMMANDS, ids=[" ".join(p) or "-" for p, _ in COMMANDS])
def test_every_help_keeps_its_bracketed_words(path, command):
    result = runner.invoke(app, [*path, "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    for word in _words(command):
        assert _flat(word) in _flat(result.output), f"{' '.join(path)} --help lost {word}"


def test_batch_help_names_the_cluster_extra():
    result = runner.invoke(app, ["batch", "--help"], env=WIDE)
    assert "pip install 'vdenoise[cluster]'" in result.output


@pytest.mark.parametrize("name", ["x[cluster].mp4", "x[/b].mp4", "[bold]x.mp4"])
def test_a_path_with_brackets_is_said_whole(tmp_path, name):
    missing = tmp_path / "d[ir]" / name
    result = runner.invoke(app, ["probe", str(missing)])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {missing} does not exist"


def test_the_missing_extra_is_named_in_the_hint(tmp_path, monkeypatch):
    clip = make_clip(tmp_path / "in.mp4", ClipSpec(frames=4))
    monkeypatch.setitem(__import__("sys").modules, "ray", None)  # as if Ray were not installed
    out = tmp_path / "out"
    result = runner.invoke(app, ["batch", str(clip), "-o", str(out), "--cluster", "local"])
    assert result.exit_code == 2
    assert "(pip install 'vdenoise[cluster]')" in result.stderr


def test_fail_keeps_brackets_in_message_and_hint(capsys):
    with pytest.raises(typer.Exit):
        fail(UsageError("a[/b] and c[red]", "try [bold]d[/bold]"))
    assert capsys.readouterr().err.strip() == "error: a[/b] and c[red] (try [bold]d[/bold])"


def test_progress_lines_keep_brackets(capsys):
    ConsoleObserver().note("weights: w[/x]/f2r[small].safetensors")
    progress = BatchProgress()
    progress.ended(SimpleNamespace(status="failed", input="in[cluster].mp4", error="bad [red]x"))
    progress.summary(
        [SimpleNamespace(status="failed", input="a[b].mp4", error="e[/e]", frames=0)], "m[1].jsonl"
    )
    err = capsys.readouterr().err
    for words in ("w[/x]/f2r[small].safetensors", "in[cluster].mp4: bad [red]x", "m[1].jsonl"):
        assert words in err
    assert "a[b].mp4: e[/e]" in err
