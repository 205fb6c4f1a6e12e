"""Every command the README and docs/ show works, checked without a cluster and without a run.

Why: a newcomer copies these commands first, and they break silently when a module,
flag, Makefile target or config key is renamed. The conventions (also in
docs/README.md, "How these pages are tested"):

* commands are the lines of fenced ``bash``/``sh`` blocks (``#`` starts a comment,
  ``\\`` continues a line, a quoted string may span lines) and the ``$ `` lines of
  ``console`` blocks; plain fences hold output and diagrams and are not read;
* ``make <target> [VAR=value]`` must dry-run (``make -n``) as written;
* ``python -m <module>`` / ``python <script>`` must exist and parse ``--help`` (with the
  command's leading subcommand), and ``--help`` must list every ``--flag`` the command
  uses; an entry point that imports TensorFlow/TFX/Beam before parsing its arguments is
  checked from its source instead (``testing/cli_probe.py`` says why);
* ``node <script>`` must exist and handle every ``--flag`` used;
* ``--config``/``CONFIG=`` files must load with the command's ``--set`` overrides; other
  repo files a command names must exist;
* any other program (curl, kubectl, docker, gsutil) needs a service or a cluster: its
  block must follow ``<!-- needs: <what> -->``, and only such commands are skipped.

Relative links in these pages must point at existing files and headings.
"""
from __future__ import annotations

import ast
import glob
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from typing import Dict, Iterator, List, Sequence, Tuple

import pytest

from common.config import ConfigError
from common.loader import load_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCS = ["README.md"] + sorted(os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, "docs", "*.md")))
# Markdown elsewhere in the source tree (e.g. serving/k8s/README.md): links checked too.
OTHER_MARKDOWN = sorted(os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, "*", "**", "*.md"),
                                                                    recursive=True)
                        if os.path.relpath(p, REPO).split(os.sep)[0] not in
                        {"docs", "node_modules", ".venv", "runs", "build"})
COMMAND_LANGUAGES = ("bash", "sh", "console")
PYTHONS = ("python", "python3", ".venv/bin/python")
CHECKED_PROGRAMS = ("make", "node") + PYTHONS
# Top-level directories of the source tree: a path under one of them that a command
# names is an input and must exist (runs/, build/, /tmp are outputs).
SOURCE_DIRS = ("bench", "common", "components", "configs", "docs", "edge", "extension", "kubeflow",
               "pipeline", "schema", "serving", "testing", "tests", "trainer")
INPUT_SUFFIXES = (".py", ".mjs", ".js", ".yaml", ".yml", ".pbtxt", ".md")
NEEDS = re.compile(r"^\s*<!--\s*needs:\s*(?P<what>.+?)\s*-->\s*$")
FENCE = re.compile(r"^\s*```(?P<lang>[\w-]*)\s*$")
PLACEHOLDER = re.compile(r"<[^<>\s]+>")
ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


@dataclass(frozen=True)
class Command:
    """One command line of a docs code block."""
    doc: str
    line: int
    text: str
    needs: str  # what the block needs ("" for nothing): its other programs are skipped

    @property
    def argv(self) -> List[str]:
        """The words, without leading ``VAR=value`` environment assignments."""
        words = shlex.split(self.text, comments=True)
        while words and ENV_ASSIGNMENT.match(words[0]):
            words.pop(0)
        return words

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}: {self.text}"

    @property
    def test_id(self) -> str:
        """``doc:line: words`` without the trailing comment."""
        return f"{self.doc}:{self.line}: {' '.join(shlex.split(self.text, comments=True))}"


def code_blocks(doc: str) -> Iterator[Tuple[str, int, List[str], str]]:
    """(language, first line number, lines, needs) of each fenced block of ``doc``."""
    with open(os.path.join(REPO, doc), encoding="utf-8") as f:
        lines = f.read().splitlines()
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        previous = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        needs = NEEDS.match(previous)
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "```"), None)
        assert end is not None, f"{doc}:{i + 1}: a code block that is never closed"
        yield match["lang"], i + 2, lines[i + 1:end], needs["what"] if needs else ""
        i = end + 1


def block_commands(doc: str, language: str, first_line: int, lines: Sequence[str],
                   needs: str) -> Iterator[Command]:
    """The logical command lines of one block (continuations and multi-line quotes joined)."""
    pending, start = "", 0
    for offset, raw in enumerate(lines):
        line = raw.rstrip()
        if not pending:
            if language == "console":
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            start = first_line + offset
        pending = f"{pending}\n{line}" if pending else line
        if pending.endswith("\\"):
            pending = pending[:-1]
            continue
        try:
            shlex.split(pending, comments=True)
        except ValueError:  # an open quote: the command goes on on the next line
            continue
        yield Command(doc, start, " ".join(pending.split("\n")), needs)
        pending = ""
    assert not pending, f"{doc}:{start}: an unfinished command at the end of the block: {pending!r}"


def doc_commands() -> List[Command]:
    commands = []
    for doc in DOCS:
        for language, first_line, lines, needs in code_blocks(doc):
            if language in COMMAND_LANGUAGES:
                commands.extend(block_commands(doc, language, first_line, lines, needs))
    return commands


COMMANDS = doc_commands()


def _flags(words: Sequence[str]) -> List[str]:
    """The ``--long-flags`` a command passes (``--x=1`` and ``[--x`` count as ``--x``)."""
    flags = []
    for word in words:
        word = word.strip("[]")
        if word.startswith("--") and len(word) > 2:
            flags.append(word.split("=", 1)[0])
    return flags


def _option_values(words: Sequence[str], flag: str) -> List[str]:
    values = []
    for i, word in enumerate(words):
        if word == flag and i + 1 < len(words):
            values.append(words[i + 1])
        elif word.startswith(flag + "="):
            values.append(word.split("=", 1)[1])
    return values


# ----------------------------------------------------------------------------
# Python entry points: one probe process for all of them
# ----------------------------------------------------------------------------

@dataclass(frozen=True)
class EntryPoint:
    kind: str  # "module" or "script"
    target: str  # dotted module or repo-relative script path
    args: Tuple[str, ...]  # leading positional arguments (a subcommand) before --help

    @property
    def source_file(self) -> str:
        if self.kind == "script":
            return os.path.join(REPO, self.target)
        path = os.path.join(REPO, *self.target.split("."))
        return os.path.join(path, "__main__.py") if os.path.isdir(path) else path + ".py"


def entry_point(words: Sequence[str]) -> EntryPoint:
    """``python -m mod sub --x`` -> module mod with args (sub,); ``python s.py --x`` -> script."""
    if words[1] == "-m":
        kind, target, rest = "module", words[2], words[3:]
    else:
        kind, target, rest = "script", words[1], words[2:]
    leading = []
    for word in rest:
        if word.startswith("-") or PLACEHOLDER.search(word):
            break
        leading.append(word)
    return EntryPoint(kind, target, tuple(leading))


@pytest.fixture(scope="session")
def help_texts(tmp_path_factory) -> Dict[EntryPoint, dict]:
    """``--help`` of every Python entry point the docs use, from one probe process."""
    points = sorted({entry_point(c.argv) for c in COMMANDS if c.argv and c.argv[0] in PYTHONS},
                    key=lambda p: (p.kind, p.target, p.args))
    points = [p for p in points if os.path.isfile(p.source_file)]  # the rest fail in the test
    out = tmp_path_factory.mktemp("cli_probe") / "results.json"
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    subprocess.run([sys.executable, "-m", "testing.cli_probe", str(out)], cwd=REPO, env=env,
                   input=json.dumps([{"kind": p.kind, "target": p.target, "args": list(p.args)}
                                     for p in points]),
                   text=True, check=True, timeout=120)
    return dict(zip(points, json.loads(out.read_text())))


def source_flags(path: str) -> str:
    """The option strings a CLI's source defines (its ``"--x"`` literals), as text; with
    ``add_config_arguments`` those of ``common/cli_args.py`` too."""
    with open(path, encoding="utf-8") as f:
        source = f.read()
    assert re.search(r"^if __name__ == .__main__.:", source, re.M), f"{path}: no __main__ entry point"
    text = _option_literals(source, path)
    if "add_config_arguments" in source:
        helper = os.path.join(REPO, "common", "cli_args.py")
        with open(helper, encoding="utf-8") as f:
            text += " " + _option_literals(f.read(), helper)
    return text


def _option_literals(source: str, path: str) -> str:
    return " ".join(node.value for node in ast.walk(ast.parse(source, filename=path))
                    if isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and node.value.startswith("--"))


def _defines_flag(text: str, flag: str) -> bool:
    return re.search(re.escape(flag) + r"(?![\w-])", text) is not None


def check_python(command: Command, help_texts: Dict[EntryPoint, dict]) -> None:
    words = command.argv
    point = entry_point(words)
    if point.kind == "script":
        assert os.path.isfile(point.source_file), f"{command}: no such script {point.target}"
    else:
        assert os.path.isfile(point.source_file), (
            f"{command}: no module {point.target} (expected {os.path.relpath(point.source_file, REPO)})")
    result = help_texts[point]
    if result["status"] == "heavy":  # imports TensorFlow before parsing: read its source
        defined, how = source_flags(point.source_file), f"the source of {point.target}"
    else:
        assert result["status"] == "ok", (
            f"{command}: `{point.target} {' '.join(point.args)} --help` failed:\n{result['output']}")
        defined, how = result["output"], f"`{point.target} {' '.join(point.args)} --help`"
    unknown = [flag for flag in _flags(words) if not _defines_flag(defined, flag)]
    assert not unknown, f"{command}: {how} defines no {unknown}"


def check_node(command: Command) -> None:
    script = command.argv[1]
    path = os.path.join(REPO, script)
    assert os.path.isfile(path), f"{command}: no such script {script}"
    with open(path, encoding="utf-8") as f:
        source = f.read()
    unknown = [flag for flag in _flags(command.argv[2:]) if not _defines_flag(source, flag)]
    assert not unknown, f"{command}: {script} handles no {unknown}"


def check_make(command: Command) -> None:
    """A dry run of exactly the documented arguments: the target exists and its recipe expands."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    result = subprocess.run(["make", "-n", *command.argv[1:]], cwd=REPO, env=env, text=True,
                            capture_output=True, timeout=60)
    assert result.returncode == 0, f"{command}: `make -n` failed:\n{result.stderr}"


def check_configs(command: Command) -> None:
    """``--config``/``CONFIG=`` files load with the command's ``--set`` overrides."""
    words = shlex.split(command.text, comments=True)  # with the environment assignments
    configs = _option_values(words, "--config")
    configs += [w.split("=", 1)[1] for w in words if re.match(r"^(EXTENSION_)?CONFIG=", w)]
    for config in configs:
        if PLACEHOLDER.search(config):
            continue
        path = os.path.join(REPO, config)
        assert os.path.isfile(path), f"{command}: no config file {config}"
        try:
            load_config(path, _option_values(words, "--set"), require_data=False)
        except ConfigError as error:
            pytest.fail(f"{command}: {error}")


def check_input_paths(command: Command) -> None:
    """Repo files a command names (bench/x.py, configs/x.yaml) exist."""
    for word in shlex.split(command.text, comments=True):
        for value in (word, word.split("=", 1)[-1]):
            value = value.strip("[]")
            if (value.split("/")[0] in SOURCE_DIRS and value.endswith(INPUT_SUFFIXES)
                    and not PLACEHOLDER.search(value)):
                assert os.path.isfile(os.path.join(REPO, value)), f"{command}: no file {value}"


def test_the_docs_show_commands():
    """The parser finds the README's two commands (else every other test here is vacuous)."""
    readme = [c.argv for c in COMMANDS if c.doc == "README.md"]
    assert ["make", "run"] in readme and ["make", "test"] in readme, readme


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.test_id)
def test_command_works(command: Command, help_texts):
    words = command.argv
    program = words[0]
    if program not in CHECKED_PROGRAMS:
        assert command.needs, (
            f"{command}: `{program}` needs a service or a cluster: put `<!-- needs: <what> -->` "
            "before its block (docs/README.md, 'How these pages are tested')")
        pytest.skip(f"needs {command.needs}")
    check_input_paths(command)
    check_configs(command)
    if program == "make":
        check_make(command)
    elif program == "node":
        check_node(command)
    else:
        check_python(command, help_texts)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def _anchors(path: str) -> List[str]:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)  # '#' lines in code are no headings
    return [_slug(m) for m in re.findall(r"^#+\s+(.*)$", text, re.M)]


@pytest.mark.parametrize("doc", DOCS + OTHER_MARKDOWN)
def test_relative_links_resolve(doc: str):
    with open(os.path.join(REPO, doc), encoding="utf-8") as f:
        text = re.sub(r"^```.*?^```", "", f.read(), flags=re.S | re.M)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"^[a-z]+:", target):
            continue  # https:, mailto:
        path, _, anchor = target.partition("#")
        file = os.path.normpath(os.path.join(REPO, os.path.dirname(doc), path)) if path else os.path.join(REPO, doc)
        if not os.path.exists(file):
            broken.append(f"{target} (no such file)")
        elif anchor and file.endswith(".md") and anchor not in _anchors(file):
            broken.append(f"{target} (no heading #{anchor})")
    assert not broken, f"{doc}: broken links {broken}"
