"""``calibration``: how far the model's categorical attributes were from the population, and are after ``calibrate``.

Per group (``by``, default the persona's stratum: its state) and over all, the total variation
distance between the personas' weighted distribution of an LLM-written
attribute (industry, by default) and the census targets, as the model wrote
it (``tvd_llm``) and after the ``calibrate`` enricher (``tvd_calibrated``);
the share of personas calibrate moved; personas it could not calibrate (no
targets for their stratum); and, over all, each category's gap (model share
minus target share), which shows what the model over- and under-produces.
Without a calibrate enricher in the run it still reports ``tvd_llm`` and the
gaps, so any tier run can be scored against the census.
"""

from __future__ import annotations

from collections import defaultdict

from pydantic import Field

from simrun import CheckContext, Metric, MetricValue, Problem, StrictConfig, data, hookimpl, tvd

ALL = ""


class CalibrationMetric(Metric):
    """Distance of LLM-written categories from census targets, before and after calibrate, per stratum."""

    name = "calibration"

    class Config(StrictConfig):
        attributes: list[str] = Field(["industry"], min_length=1)
        targets: str | None = Field(
            None, description="Same file as the calibrate enricher's; default: ACS 2023 industry by state."
        )
        by: str = Field("stratum", description="As the calibrate enricher's.")

    @classmethod
    def check(cls, config: Config, context: CheckContext) -> list[Problem]:
        data.targets(config.targets, config.attributes)  # a bad file is named here, line by line
        return []

    def compute(self, run) -> list[MetricValue]:
        attributes = self.config.attributes
        targets = data.targets(self.config.targets, attributes)
        # attribute -> stratum -> {"llm"|"calibrated"|"target"} -> category -> weight
        tables: dict[str, dict[str, dict[str, dict[str, float]]]] = {
            a: defaultdict(
                lambda: {"llm": defaultdict(float), "calibrated": defaultdict(float), "target": defaultdict(float)}
            )
            for a in attributes
        }
        weight: dict[str, dict[str, float]] = {a: defaultdict(float) for a in attributes}
        moved: dict[str, float] = defaultdict(float)
        uncalibrated: dict[str, int] = defaultdict(int)
        counted: dict[str, int] = defaultdict(int)
        calibrated_any: dict[str, bool] = defaultdict(bool)
        for persona in run.personas():
            stratum = persona.group(self.config.by)
            for a in attributes:
                if a not in persona.attributes:
                    continue
                shares = targets.shares[a].get(stratum)
                if shares is None:
                    uncalibrated[a] += 1
                    continue
                llm = str(persona.attributes.get(f"_{a}_llm", persona.attributes[a]))
                now = str(persona.attributes[a])
                calibrated_any[a] |= f"_{a}_llm" in persona.attributes
                for key in (stratum, ALL):
                    tables[a][key]["llm"][llm] += persona.weight
                    tables[a][key]["calibrated"][now] += persona.weight
                    for category, share in shares.items():
                        tables[a][key]["target"][category] += persona.weight * share
                weight[a][ALL] += persona.weight
                counted[a] += 1
                moved[a] += persona.weight * (llm != now)
        values: list[MetricValue] = []
        for a in attributes:
            values += [
                MetricValue(name=f"personas_with[{a}]", value=float(counted[a])),
                MetricValue(name=f"uncalibrated[{a}]", value=float(uncalibrated[a])),
            ]
            if not weight[a][ALL]:  # a variant of a sweep without the tier that writes it
                continue
            for stratum, table in sorted(tables[a].items()):
                values.append(
                    MetricValue(name=f"tvd_llm[{a}]", value=tvd(table["llm"], table["target"]), stratum=stratum)
                )
                if calibrated_any[a]:
                    values.append(
                        MetricValue(
                            name=f"tvd_calibrated[{a}]",
                            value=tvd(table["calibrated"], table["target"]),
                            stratum=stratum,
                        )
                    )
            overall = tables[a][ALL]
            total_llm, total_target = sum(overall["llm"].values()), sum(overall["target"].values())
            values += [
                MetricValue(
                    name=f"gap[{a}={c}]",
                    value=overall["llm"].get(c, 0.0) / total_llm - overall["target"].get(c, 0.0) / total_target,
                )
                for c in sorted(set(overall["llm"]) | set(overall["target"]))
            ]
            values.append(MetricValue(name=f"moved_share[{a}]", value=moved[a] / weight[a][ALL]))
        return values


@hookimpl
def register_metrics(register):
    register(CalibrationMetric)
