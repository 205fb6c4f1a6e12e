"""A small LIAR-format data set with invented statements, for unit and wiring tests.

The real LIAR files are research-only and are never copied into this repo; these rows
only mimic their format: 14 tab-separated columns, no header, quotes inside the
statement, empty job/state/context fields, comma-separated subjects.
"""
import os
from typing import List, Sequence

from common.paths import REPO_ROOT

COLUMNS = ["id", "label", "statement", "subjects", "speaker", "job", "state", "party",
           "barely_true_count", "false_count", "half_true_count", "mostly_true_count",
           "pants_fire_count", "context"]
CLASSES = ["pants-fire", "false", "barely-true", "half-true", "mostly-true", "true"]

# Hand-written rows covering the format's corners.
TRICKY = [
    ["1.json", "true", 'The mayor said "we cut taxes by 5%" and it\'s true.', "taxes,economy",
     "ann-lee", "Mayor", "Ohio", "democrat", "1", "0", "2", "3", "0", "a press release"],
    ["2.json", "false", 'Says "the moon is made of cheese," he insists.', "science",
     "bob-ray", "", "", "republican", "0", "4", "0", "0", "1", ""],
    ["3.json", "half-true", "Unemployment fell, but wages didn't rise!", "economy, jobs ",
     "ann-lee", "Mayor", "Ohio", "democrat", "1", "0", "2", "3", "0", "an interview"],
]

_SPEAKERS = [("ann-lee", "Mayor", "Ohio", "democrat"), ("bob-ray", "Senator", "Texas", "republican"),
             ("cy-dunn", "", "", "none"), ("di-fox", "Governor", "Iowa", "republican"),
             ("ed-gil", "Blogger", "", "independent")]
_TOPICS = [("taxes", "the tax rate"), ("economy", "the jobs report"), ("health", "the hospital budget"),
           ("education", "school funding"), ("crime", "the crime rate")]
_TRUE_WORDS = ["according to the census", "records show", "the report found"]
_FALSE_WORDS = ["secretly", "never in history", "totally destroyed"]


def rows(n: int, offset: int = 0) -> List[List[str]]:
    """``n`` invented rows; the label depends on the wording and the speaker, so a
    model can learn something, and every speaker has a record."""
    out = []
    for i in range(offset, offset + n):
        speaker, job, state, party = _SPEAKERS[i % len(_SPEAKERS)]
        subject, phrase = _TOPICS[(i // 2) % len(_TOPICS)]
        honest = (i * 7 + len(speaker)) % 3 != 0
        words = _TRUE_WORDS if honest else _FALSE_WORDS
        label = CLASSES[3 + i % 3] if honest else CLASSES[i % 3]
        statement = f'{speaker.split("-")[0].title()} says {phrase} {words[i % 3]} "rose by {i % 40} percent."'
        out.append([f"{1000 + i}.json", label, statement, f"{subject},{_TOPICS[i % 5][0]}", speaker, job,
                    state, party, "1", "2", "3", "4", "0", "a speech" if i % 4 else ""])
    return out


def write_tsv(path: str, lines: Sequence[Sequence[str]]) -> str:
    with open(path, "w", encoding="utf-8") as f:
        for line in lines:
            f.write("\t".join(line) + "\n")
    return path


def write_fixture(directory: str, train_rows: int = 120, eval_rows: int = 40) -> str:
    """train.tsv and valid.tsv in ``directory`` (created); returns the directory."""
    os.makedirs(directory, exist_ok=True)
    write_tsv(os.path.join(directory, "train.tsv"), TRICKY + rows(train_rows))
    write_tsv(os.path.join(directory, "valid.tsv"), rows(eval_rows, offset=10_000))
    return directory


# The shipped LIAR config, pointed at a fixture directory by these overrides.
LIAR_CONFIG = os.path.join(REPO_ROOT, "configs", "liar.yaml")


def fixture_overrides(directory: str) -> List[str]:
    """``--set`` overrides that read the LIAR config's data from ``directory``."""
    return [f"data.path={directory}", "data.path_env=''"]
