"""The simple alternative every table is compared with: TF-IDF + logistic regression, one per text task.

Trained on exactly the train split the recipe carves (``inference.training.recipe.load_splits``: near-duplicates
removed, same seed, same dev split), so its dev scores and the model's are comparable. Features: word 1-2 grams
and character 2-5 grams inside word boundaries (both sublinear TF, lower-cased), which is what a bag-of-words
baseline of short tweets usually means; L2 logistic regression, C=10, balanced class weights off. No torch:
scikit-learn only (the ``eval`` extra).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from inference.errors import ConfigError
from inference.training.data import TextExample

log = logging.getLogger(__name__)
NAME = "tfidf-logreg"


@dataclass
class TextBaseline:
    """A fitted TF-IDF + logistic-regression classifier for one text task."""

    pipeline: object

    @classmethod
    def fit(cls, examples: Sequence[TextExample], *, c: float = 10.0, seed: int = 13) -> "TextBaseline":
        try:
            from sklearn.feature_extraction.text import TfidfVectorizer
            from sklearn.linear_model import LogisticRegression
            from sklearn.pipeline import make_pipeline, make_union
        except ImportError as exc:  # a user mistake: one clear line, not a traceback
            raise ConfigError("the TF-IDF baseline needs scikit-learn: pip install 'finmon[eval]'") from exc
        features = make_union(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2),
        )
        pipeline = make_pipeline(features, LogisticRegression(C=c, max_iter=2000, random_state=seed))
        pipeline.fit([e.text for e in examples], [e.label for e in examples])
        log.info("fitted %s on %d examples", NAME, len(examples))
        return cls(pipeline)

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.pipeline.predict(list(texts)), dtype=np.int64)  # type: ignore[attr-defined]
