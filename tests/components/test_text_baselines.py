"""components.text_baselines: majority class and TF-IDF logistic regression on the fixture."""

from components import classification_metrics as cm
from components.text_baselines import fit_and_score
from testing import liar_fixture


def test_text_baselines_on_the_fixture():
    train, test = liar_fixture.rows(300), liar_fixture.rows(100, offset=5000)
    ids = lambda rows: cm.class_ids([r[1] for r in rows], liar_fixture.CLASSES, "x")  # noqa: E731
    result = fit_and_score([r[2] for r in train], ids(train), [r[2] for r in test], ids(test),
                           liar_fixture.CLASSES, [3, 4, 5], seed=0)
    lr, majority = result["tfidf_logistic_regression"], result["majority_class"]
    # the fixture's wording decides the binary label: TF-IDF finds it, the majority cannot
    assert lr["binary_accuracy"] > 0.9 > majority["binary_accuracy"]
    assert 0 <= lr["macro_f1"] <= 1 and majority["predicts"] in liar_fixture.CLASSES
