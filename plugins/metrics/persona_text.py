"""``persona_text``: how much of each persona a model wrote, and in what tone.

The seed paper's finding, as numbers: the more of a persona an LLM writes,
the more positive and subjective the personas become. Per run: the share of
attributes (and of characters) whose provenance is ``llm:``; the sentiment
polarity (-1..1) and subjectivity (0..1) of the LLM-written text, from
TextBlob's lexicon (shipped with the package, nothing downloaded); the most
frequent positive and negative terms; how many tier replies were invalid;
and the consistency rules: per tier, personas whose reply broke a rule and was
regenerated (``regenerated[tier]``) or kept and flagged (``flagged[tier]``),
flagged violations per rule, and the share of personas with any flag.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from pydantic import Field

from simrun import Metric, MetricValue, StrictConfig, hookimpl


def text_of(value: object) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


class PersonaTextMetric(Metric):
    """LLM-written share of personas, sentiment and subjectivity of that text, invalid tier replies."""

    name = "persona_text"

    class Config(StrictConfig):
        top_terms: int = Field(
            5, ge=0, description="How many of the most frequent positive and negative terms to report."
        )

    def compute(self, run) -> list[MetricValue]:
        from textblob import TextBlob

        shares, char_shares, polarity, subjectivity = [], [], [], []
        invalid: Counter[str] = Counter()
        consistency: dict[str, Counter[str]] = {"regenerated": Counter(), "flagged": Counter(), "violations": Counter()}
        any_flag = 0
        terms: dict[str, Counter[str]] = {"positive": Counter(), "negative": Counter()}
        personas = 0
        for persona in run.personas():
            personas += 1
            shown = {k: v for k, v in persona.attributes.items() if not k.startswith("_")}
            invalid.update(
                k[1:].removesuffix("_invalid")
                for k in persona.attributes
                if k.startswith("_") and k.endswith("_invalid")
            )
            flagged = False
            for key, value in persona.attributes.items():
                if key.startswith("_") and key.endswith("_regenerated"):
                    consistency["regenerated"][key[1:].removesuffix("_regenerated")] += 1
                elif key.startswith("_") and key.endswith("_violations"):
                    consistency["flagged"][key[1:].removesuffix("_violations")] += 1
                    consistency["violations"].update(value)
                    flagged = True
            any_flag += flagged
            written = {k: v for k, v in shown.items() if persona.provenance.get(k, "").startswith("llm:")}
            shares.append(len(written) / len(shown) if shown else 0.0)
            total_chars = sum(len(text_of(v)) for v in shown.values())
            char_shares.append(sum(len(text_of(v)) for v in written.values()) / total_chars if total_chars else 0.0)
            if written:
                blob = TextBlob(". ".join(text_of(v) for v in written.values()))
                polarity.append(blob.sentiment.polarity)
                subjectivity.append(blob.sentiment.subjectivity)
                for words, score, _, _ in blob.sentiment_assessments.assessments:
                    if score:
                        terms["positive" if score > 0 else "negative"][" ".join(words)] += 1
        if personas == 0:
            raise ValueError("persona_text metric: the run has no personas")
        values = [
            MetricValue(name="llm_share_attributes", value=float(np.mean(shares))),
            MetricValue(name="llm_share_characters", value=float(np.mean(char_shares))),
            MetricValue(name="personas_with_llm_text", value=float(len(polarity))),
            MetricValue(name="sentiment_polarity", value=float(np.mean(polarity)) if polarity else float("nan")),
            MetricValue(name="subjectivity", value=float(np.mean(subjectivity)) if subjectivity else float("nan")),
            *(MetricValue(name=f"invalid[{tier}]", value=float(n)) for tier, n in sorted(invalid.items())),
            MetricValue(name="flagged_share", value=any_flag / personas),
            *(
                MetricValue(name=f"{kind}[{key}]", value=float(n))
                for kind, counter in consistency.items()
                for key, n in sorted(counter.items())
            ),
        ]
        for sign, counter in terms.items():
            values += [
                MetricValue(name=f"{sign}_term[{term}]", value=float(n))
                for term, n in counter.most_common(self.config.top_terms)
            ]
        return values


@hookimpl
def register_metrics(register):
    register(PersonaTextMetric)
