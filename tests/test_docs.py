"""What a newcomer reads: every documented command runs as written, and no doc points outside the repo."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from signpipe.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
DOCS = sorted([REPO / "README.md", *(REPO / "docs").rglob("*.md")])
SHELLS = {"", "bash", "sh", "shell", "console"}


def fenced_blocks(text: str) -> tuple[list[tuple[str, str]], str]:
    """The fenced code blocks of a markdown text as (language, body), and the text outside them."""
    blocks, prose, language, body = [], [], None, []
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            if language is None:
                language, body = line.strip()[3:].strip().lower(), []
            else:
                blocks.append((language, "\n".join(body)))
                language = None
        elif language is None:
            prose.append(line)
        else:
            body.append(line)
    return blocks, "\n".join(prose)


def shell_commands(text: str) -> list[str]:
    """Every command of the fenced shell blocks of a markdown text (``bash``, ``sh``, ``shell``,
    ``console`` or untagged), with continuation lines joined, ``$ `` prompts and comments dropped,
    and ``a && b`` / ``a; b`` split."""
    commands = []
    for language, block in fenced_blocks(text)[0]:
        if language not in SHELLS:
            continue
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ")
            if "#" in line:
                line = line[:line.index(" #")] if " #" in line else ("" if line.startswith("#") else line)
            commands += [" ".join(part.split()) for part in re.split(r"&&|;|\|", line) if part.strip()]
    return commands


def inline_commands(text: str) -> list[str]:
    """Inline code spans of a markdown text that start with ``snakemake ``: commands in prose."""
    return [span for span in re.findall(r"`([^`\n]+)`", fenced_blocks(text)[1]) if span.startswith("snakemake ")]


def runs_jobs_without_cores(command: str) -> bool:
    """A ``snakemake`` command that would run jobs (not a dry run, lint, report, list or help) but
    names neither ``--cores``/``-c``/``-j``/``--jobs`` nor a ``--profile``: Snakemake refuses it
    ("cores have to be specified")."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    words = words[next((i for i, w in enumerate(words) if "=" not in w), len(words)):]  # env assignments
    if not words or words[0] != "snakemake":
        return False
    flags = {w.split("=", 1)[0] for w in words[1:]}
    no_jobs = {"-n", "--dry-run", "--dryrun", "--lint", "--report", "--list-rules", "--list", "-l", "--help", "-h",
               "--dag", "--rulegraph", "--summary", "--detailed-summary", "--version", "--unlock", "--cleanup-metadata"}
    has_cores = bool(flags & {"--cores", "-c", "--jobs", "-j", "--profile", "--workflow-profile"}) or any(
        re.fullmatch(r"-[cj]\d+", w) for w in words[1:])
    return not (flags & no_jobs) and not has_cores


def test_the_cores_rule_itself():
    """The check flags the issue's failing command and passes the ones that run."""
    assert runs_jobs_without_cores("snakemake --forcerun decode")
    assert runs_jobs_without_cores("SIGNPIPE_X=1 snakemake results/a.h5")
    assert not runs_jobs_without_cores("snakemake --cores all --forcerun decode")
    assert not runs_jobs_without_cores("snakemake -n --forcerun hands")
    assert not runs_jobs_without_cores("snakemake --profile workflow/profiles/slurm")
    assert not runs_jobs_without_cores("snakemake -c1 all")
    block = "```bash\nsnakemake --cores 2 \\\n  --forcerun decode  # redo\n# note\nmake demo && snakemake x\n```\n"
    assert shell_commands(block) == ["snakemake --cores 2 --forcerun decode", "make demo", "snakemake x"]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_documented_snakemake_commands_name_cores(doc):
    """Every `snakemake` command in a fenced shell block, or in an inline code span, that runs jobs
    has `--cores` or a `--profile`."""
    text = doc.read_text()
    bad = [c for c in shell_commands(text) + inline_commands(text) if runs_jobs_without_cores(c)]
    assert not bad, f"{doc.relative_to(REPO)}: add --cores (or --profile) to: {bad}"


def test_cli_help_commands_name_cores():
    """The `signpipe --help` epilog's snakemake commands, and every subcommand's, run as written."""
    parser = build_parser()
    texts = [parser.format_help()]
    texts += [sub.format_help() for action in parser._subparsers._group_actions for sub in action.choices.values()]
    lines = [line.strip() for text in texts for line in text.splitlines() if line.strip().startswith("snakemake")]
    bad = [line for line in lines if runs_jobs_without_cores(line.split("  #")[0])]
    assert not bad, f"signpipe --help: add --cores to: {bad}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_docs_point_nowhere_outside_the_repo(doc):
    """A user has no `../shared` folder and no LESSONS file: docs cite papers and say things in place."""
    text = doc.read_text()
    assert "../shared" not in text and "shared/papers" not in text and "shared/data" not in text
    assert "LESSONS" not in text


def test_citation_and_licence_are_shipped():
    """LICENSE is the MIT licence pyproject declares; CITATION.cff and the README's Cite section
    name the three papers by DOI."""
    assert "MIT" in (REPO / "pyproject.toml").read_text()
    assert (REPO / "LICENSE").read_text().startswith("MIT License")
    citation = (REPO / "CITATION.cff").read_text()
    readme = (REPO / "README.md").read_text()
    assert "cff-version:" in citation and "license: MIT" in citation
    cite = readme[readme.index("\n## Cite"):]
    for doi in ("10.1109/ICCV48922.2021.01090", "10.1609/aaai.v35i2.16247", "10.1145/3436754"):
        assert doi in citation and doi in cite
    assert cite.count("@inproceedings{") == 2 and cite.count("@article{") == 1


def test_commands_in_messages_name_cores():
    """Error messages and comments of the library and workflow that tell the user to run snakemake
    (e.g. hands' 'rerun the pose stage ... --forcerun pose') give a command that runs as written."""
    sources = [*(REPO / "signpipe").rglob("*.py"), *(REPO / "workflow").rglob("*.smk"),
               *(REPO / "workflow").rglob("*.py")]
    bad = [f"{path.relative_to(REPO)}: {command}" for path in sources
           for command in re.findall(r"snakemake(?: -[-\w]+(?: [\w/.=]+)?)+", path.read_text())
           if runs_jobs_without_cores(command)]
    assert not bad, bad
