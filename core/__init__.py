"""simrun: simulate human populations with LLM personas.

``import simrun`` is the whole plugin API: a plugin, built-in or not, imports
from here and from nowhere else in simrun (docs/plugins.md documents each
name). Nothing in this package imports a plugin.
"""

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("simrun")

from . import data  # noqa: E402 - the names below need hookimpl and __version__ defined first
from .analysis import RunLog as RunLog  # noqa: E402 - notebooks: simrun.open("simrun.db"), kept out of __all__
from .analysis import open as open  # noqa: E402
from .baselines import FixedSharesView  # noqa: E402
from .bundled import BUNDLED_MODEL, bundled_model  # noqa: E402
from .census import (  # noqa: E402
    AGE_BANDS,
    BANDS,
    CITIZENSHIP,
    DIMENSIONS,
    EDUCATION,
    EMPLOYMENT,
    HOUSEHOLD_INCOME,
    MARITAL,
    SEXES,
    Controls,
    age_band,
    control_category,
    load_controls,
    read_controls,
    shipped_controls,
)
from .components import (  # noqa: E402
    COST_COUNTER,
    Ablation,
    CheckContext,
    Component,
    EnrichContext,
    Enricher,
    Estimate,
    Executor,
    Metric,
    MetricValue,
    Problem,
    RunData,
    Sampler,
    SharesData,
    Simulator,
    SimulatorSpec,
    StrictConfig,
    batched,
)
from .coverage import (  # noqa: E402
    COVERAGE_DIMENSIONS,
    cell_of,
    coverage_of,
    draw_by_design,
    entropy,
    kish_effective_size,
)
from .distributions import correlation, from_logprobs, from_samples, tvd  # noqa: E402
from .instruments import Instrument, InstrumentError, Skipped, read_instrument  # noqa: E402
from .models import (  # noqa: E402
    ALL_STRATA,
    INVALID_THRESHOLD,
    OPTION_LABELS,
    Answer,
    InvalidOutput,
    ModelAnswer,
    Persona,
    Prompt,
    Question,
    RunInfo,
    SharedProvenance,
    failed_answer,
)
from .overrides import set_path  # noqa: E402
from .raking import Coded, Dimension, Imputed, RakeResult, combination_key, encode, fit_state, rake  # noqa: E402
from .redaction import redact, secret  # noqa: E402
from .registry import build_simulator  # noqa: E402
from .report import pyplot  # noqa: E402
from .rules import Rule, load_rules, violations  # noqa: E402
from .schemas import bounded_integer, bounded_integers_as_enums, integer_bounds, schema_check  # noqa: E402

__all__ = [
    "__version__",
    "hookimpl",
    # components: the base classes of the six kinds, and what they take and give
    "Component",
    "Sampler",
    "Enricher",
    "Simulator",
    "Metric",
    "Ablation",
    "Executor",
    "Estimate",
    "COST_COUNTER",
    "SimulatorSpec",
    "build_simulator",
    "StrictConfig",
    "MetricValue",
    "RunData",
    "SharesData",
    "EnrichContext",
    "CheckContext",
    "Problem",
    "batched",
    # models
    "Persona",
    "SharedProvenance",
    "Question",
    "Prompt",
    "ModelAnswer",
    "Answer",
    "RunInfo",
    "InvalidOutput",
    "failed_answer",
    "ALL_STRATA",
    "OPTION_LABELS",
    "INVALID_THRESHOLD",
    # answers as distributions
    "from_logprobs",
    "from_samples",
    "tvd",
    "correlation",
    "FixedSharesView",
    # coverage of the population's trait combinations
    "COVERAGE_DIMENSIONS",
    "cell_of",
    "coverage_of",
    "draw_by_design",
    "entropy",
    "kish_effective_size",
    # survey instruments in
    "read_instrument",
    "Instrument",
    "Skipped",
    "InstrumentError",
    # census tables and raking
    "Controls",
    "read_controls",
    "load_controls",
    "shipped_controls",
    "control_category",
    "age_band",
    "DIMENSIONS",
    "AGE_BANDS",
    "BANDS",
    "SEXES",
    "MARITAL",
    "EMPLOYMENT",
    "CITIZENSHIP",
    "EDUCATION",
    "HOUSEHOLD_INCOME",
    "rake",
    "fit_state",
    "encode",
    "combination_key",
    "Coded",
    "Dimension",
    "Imputed",
    "RakeResult",
    # constrained decoding, secrets, shipped data and model
    "schema_check",
    "bounded_integer",
    "integer_bounds",
    "bounded_integers_as_enums",
    "secret",
    "redact",
    "data",
    "bundled_model",
    "BUNDLED_MODEL",
    "pyplot",
    # consistency rules for LLM-written attributes, and scenario editing for ablations
    "Rule",
    "load_rules",
    "violations",
    "set_path",
]
