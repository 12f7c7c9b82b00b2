"""An example simrun plugin, loaded with --plugins-dir: one component of each kind.

``instant`` is a deterministic test simulator (a hash of the prompt, no
model); it is for tests and benchmarks, never a default.
"""

import hashlib
import os
import re
import signal
import time

from simrun import hookimpl, pyplot
from simrun.components import Ablation, Enricher, Metric, MetricValue, Problem, Sampler, Simulator, StrictConfig
from simrun.models import ModelAnswer, Persona


class Towns(Sampler):
    """n personas per town, each with an age."""

    name = "towns"

    class Config(StrictConfig):
        towns: list[str] = ["Ashford", "Brook"]
        per_town: int = 10
        numbered: bool = False  # a house number each: no two personas alike, so every prompt is new (bench/engine)

    def provides(self):
        return {"town", "age"} | ({"house"} if self.config.numbered else set())

    @classmethod
    def planned_strata(cls, config):
        return frozenset(config.towns)

    def total(self):
        return self.config.per_town * len(self.config.towns)

    def sample(self, rng, batch_size):
        ages = [(town, rng.integers(18, 90, self.config.per_town)) for town in self.config.towns]  # drawn first
        batch, next_id = [], 0
        for town, drawn in ages:  # personas made batch by batch: memory stays flat however many are asked for
            for age in drawn.tolist():
                p = Persona(id=next_id, stratum=town, weight=1000 / self.config.per_town)
                p.set("town", town, "example:towns")
                p.set("age", age, "example:towns")
                if self.config.numbered:
                    p.set("house", next_id, "example:towns")
                batch.append(p)
                next_id += 1
                if len(batch) == batch_size:
                    yield batch
                    batch = []
        if batch:
            yield batch


class Generation(Enricher):
    """Adds a generation from age."""

    name = "generation"
    needs = frozenset({"age"})
    provides = frozenset({"generation"})

    def enrich(self, batch, context):
        for p in batch:
            p.set("generation", "older" if p.attributes["age"] >= 50 else "younger", "example:generation")
        return batch


class Instant(Simulator):
    """A deterministic answer from a hash of the prompt; optional delay, call log and crash."""

    name = "instant"
    calls = 0
    non_semantic = frozenset({"delay_s", "call_log", "kill_at_call", "kill_flag", "fail_with", "kill_on"})

    class Config(StrictConfig):
        delay_s: float = 0.0
        call_log: str | None = None
        kill_at_call: int | None = None  # SIGKILL this process at the start of call N ...
        kill_flag: str | None = None  # ... if this file exists (it is removed: one crash only)
        fail_with: str | None = None  # raise RuntimeError(this) on every call, as a broken backend does
        kill_on: str | None = None  # SIGKILL this process on a prompt holding this text, every time
        first_option_bias: float | None = None  # answer by position only: this mass on "A"
        vary_by_repeat: bool = False  # a different answer for each repeat, as a sampling model gives

    @property
    def model(self):
        return "instant-hash"

    def answer(self, prompts):
        Instant.calls += 1
        if (
            Instant.calls == self.config.kill_at_call
            and self.config.kill_flag
            and os.path.exists(self.config.kill_flag)
        ):
            os.remove(self.config.kill_flag)
            os.kill(os.getpid(), signal.SIGKILL)
        if self.config.fail_with:
            raise RuntimeError(self.config.fail_with)
        if self.config.kill_on and any(self.config.kill_on in p.system + p.user for p in prompts):
            os.kill(os.getpid(), signal.SIGKILL)
        if self.config.delay_s:  # sleep(0) still yields the CPU: 0.2 ms a call
            time.sleep(self.config.delay_s * len(prompts))
        if self.config.call_log:  # completed calls only
            with open(self.config.call_log, "a") as f:
                f.writelines(p.system + p.user + "\x1e" for p in prompts)
        out = []
        for p in prompts:
            if self.config.first_option_bias is not None:
                rest = (1 - self.config.first_option_bias) / (len(p.labels) - 1)
                out.append(
                    ModelAnswer(
                        distribution={
                            label: self.config.first_option_bias if label == "A" else rest for label in p.labels
                        },
                        invalid=0.0,
                    )
                )
                continue
            salt = f"#{p.repeat}" if self.config.vary_by_repeat else ""
            digest = hashlib.sha256((p.system + p.user + salt).encode()).digest()
            raw = [b + 1 for b in digest[: len(p.labels)]]
            out.append(
                ModelAnswer(
                    distribution={label: r / sum(raw) for label, r in zip(p.labels, raw)},
                    invalid=digest[-1] / 2550,
                    raw=p.labels[0],
                )
            )
        return out

    def generate(self, prompts, max_tokens=256, temperature=0.0, json_schema=None):
        if self.config.call_log:
            with open(self.config.call_log, "a") as f:
                f.writelines(p + "\x1e" for p in prompts)
        return [f"generated {hashlib.sha256(p.encode()).hexdigest()[:8]}" for p in prompts]


class ByContent(Simulator):
    """A deterministic answer by each option's text, wherever the option is listed: a model with no position bias."""

    name = "by_content"

    @property
    def model(self):
        return "by-content-hash"

    def answer(self, prompts):
        out = []
        for p in prompts:
            options = dict(re.findall(r"^([A-Z])\. (.+)$", p.user, flags=re.MULTILINE))
            raw = [hashlib.sha256((p.system + options[label]).encode()).digest()[0] + 1 for label in p.labels]
            out.append(ModelAnswer(distribution={label: r / sum(raw) for label, r in zip(p.labels, raw)}, invalid=0.0))
        return out


class MeanShare(Metric):
    """Population share of one option."""

    name = "mean_share"
    resamplable = True

    class Config(StrictConfig):
        question: str
        option: str = "A"

    @classmethod
    def check(cls, config, context):
        """A third-party metric gets the same checks as the built-ins: its question and option must exist."""
        question = context.question(config.question)
        if question is None:
            return [Problem("question", f"no question '{config.question}' in the scenario")]
        if config.option not in question.labels:
            return [
                Problem(
                    "option",
                    f"'{config.option}' is not an option label of {config.question} ({', '.join(question.labels)})",
                )
            ]
        return []

    def plots(self, by_stratum):
        """A third-party metric's own figure in the report: the share by town."""
        towns = sorted(t for t, v in by_stratum.items() if "share" in v)
        figure, ax = pyplot().subplots(figsize=(5, 3))
        ax.bar(towns, [by_stratum[t]["share"] for t in towns])
        return [(f"share of {self.config.option} by town", figure)]

    def compute(self, run):
        shares = run.shares(self.config.question)
        return [MetricValue(name="share", value=shares["ALL"].get(self.config.option, 0.0))] + [
            MetricValue(name="share", value=s.get(self.config.option, 0.0), stratum=k)
            for k, s in shares.items()
            if k != "ALL"
        ]


class Seeds(Ablation):
    """The same scenario under several seeds."""

    name = "seeds"

    class Config(StrictConfig):
        seeds: list[int] = [1, 2]

    def variants(self, scenario):
        for seed in self.config.seeds:
            yield f"seed {seed}", {**scenario, "seed": seed}


@hookimpl
def register_samplers(register):
    register(Towns)


@hookimpl
def register_enrichers(register):
    register(Generation)


@hookimpl
def register_simulators(register):
    register(Instant)
    register(ByContent)


@hookimpl
def register_metrics(register):
    register(MeanShare)


@hookimpl
def register_ablations(register):
    register(Seeds)
