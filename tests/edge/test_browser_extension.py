"""edge.browser_extension on the LIAR config: the text feature it reads, its CLI."""
import pytest

from common.loader import load_config
from testing import liar_fixture
from testing.liar_fixture import LIAR_CONFIG, fixture_overrides


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return liar_fixture.write_fixture(str(tmp_path_factory.mktemp("liar_data")))


def test_the_extension_reads_the_statement_the_model_is_trained_to_use_alone(data_dir):
    """LIAR has three text features; pages carry only the statement (feature_dropout_keep)."""
    from edge.browser_extension import ExtensionBuildError, text_feature

    cfg = load_config(LIAR_CONFIG, fixture_overrides(data_dir))
    assert text_feature(cfg) == "statement"
    assert text_feature(cfg, "context") == "context"
    ambiguous = load_config(LIAR_CONFIG, fixture_overrides(data_dir) + ["trainer.feature_dropout_keep=[]"])
    with pytest.raises(ExtensionBuildError, match=r"found \['statement', 'job', 'context'\]"):
        text_feature(ambiguous)


def test_extension_cli_takes_overrides_and_names_what_is_missing(tmp_path, capsys):
    """`python -m edge.browser_extension --config ... --set ...`, on a host without the data."""
    from edge.browser_extension import main

    empty = tmp_path / "serving"
    code = main(["--config", LIAR_CONFIG, "--set", f"serving.push_dir={empty}", "--set", "data.path=/nonexistent",
                 "--out", str(tmp_path / "extension")])
    assert code == 2 and f"{empty}/liar: no pushed model" in capsys.readouterr().err
    assert main(["--config", LIAR_CONFIG, "--set", "serving.no_such_key=1"]) == 2
    assert "serving.no_such_key" in capsys.readouterr().err
