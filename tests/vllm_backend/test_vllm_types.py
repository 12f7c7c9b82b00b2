"""The vLLM backend's batching and log-prob handling, on vLLM's real types (no engine)."""

import math

import pytest
from vllm import SamplingParams
from vllm.logprobs import FlatLogprobs, Logprob
from vllm.outputs import CompletionOutput, RequestOutput
from vllm.sampling_params import StructuredOutputsParams

from simrun.models import Prompt
from simrun.plugins.simulators.vllm_offline import VLLMSimulator, first_token_logprobs, label_token_ids


def completion(text, position, flat=False, index=0):
    logprobs = FlatLogprobs() if flat else []
    logprobs.append(position)
    return CompletionOutput(index=index, text=text, token_ids=[1], cumulative_logprob=None, logprobs=logprobs)


def request(outputs, prompt_ids=(1, 2, 3)):
    return RequestOutput(
        request_id="r",
        prompt=None,
        prompt_token_ids=list(prompt_ids),
        prompt_logprobs=None,
        outputs=outputs,
        finished=True,
    )


class RecordingLLM:
    """Stands in for vllm.LLM: the real tokenizer, real SamplingParams in, real RequestOutputs out; records each
    call.
    """

    def __init__(self, tokenizer, reply):
        self.tokenizer, self.reply, self.calls = tokenizer, reply, []

    def get_tokenizer(self):
        return self.tokenizer

    def generate(self, prompts, params, use_tqdm=True):
        self.calls.append((prompts, params))
        return [self.reply(p, params[i] if isinstance(params, list) else params) for i, p in enumerate(prompts)]


def simulator(tokenizer, reply, max_len=2048, **config):
    sim = VLLMSimulator(VLLMSimulator.Config(model="/models/smollm2", **config))
    sim.__dict__.update(llm=RecordingLLM(tokenizer, reply), max_len=max_len)
    return sim


@pytest.mark.parametrize("flat", [False, True])
def test_first_token_logprobs_reads_both_shapes_and_merges_alike_tokens(flat):
    position = {
        10: Logprob(-0.5, 1, " A"),
        11: Logprob(-1.5, 2, "A"),
        12: Logprob(-2.0, 3, "x"),
        13: Logprob(-math.inf, 4, "B"),
    }
    got = first_token_logprobs(completion(" A", position, flat), names={11: " A"})
    assert got[" A"] == pytest.approx(math.log(math.exp(-0.5) + math.exp(-1.5)))
    assert got["x"] == -2.0 and "B" not in got


def test_label_tokens_of_the_real_tokenizer(tokenizer):
    ids = label_token_ids(lambda t: tokenizer.encode(t, add_special_tokens=False))
    assert {"A", " A", "B", " B", "Z"} <= set(ids.values()) and len(ids) <= 128
    assert all(tokenizer.decode([i]) == text for i, text in ids.items())


def test_one_batch_one_call_with_exact_label_scoring(tokenizer):
    label = {text: i for i, text in label_token_ids(lambda t: tokenizer.encode(t, add_special_tokens=False)).items()}

    def reply(prompt, params):
        assert (
            isinstance(params, SamplingParams)
            and params.max_tokens == 1
            and sorted(params.logprob_token_ids) == params.logprob_token_ids
        )
        position = {
            label["A"]: Logprob(math.log(0.5)),
            label[" A"]: Logprob(math.log(0.1)),
            label["B"]: Logprob(math.log(0.2)),
            label["C"]: Logprob(math.log(0.1)),
        }
        return request([completion("A", position)], prompt["prompt_token_ids"])

    sim = simulator(tokenizer, reply)
    prompts = [
        Prompt(
            persona_id=p,
            question_id=q,
            system="You are a voter.",
            user=f"Question {q}?\nA. yes\nB. no",
            labels=["A", "B"],
        )
        for p in range(3)
        for q in ("q1", "q2")
    ]
    answers = sim.answer(prompts)
    assert len(sim.llm.calls) == 1 and len(sim.llm.calls[0][0]) == 6  # the whole batch in one call
    sent = sim.llm.calls[0][0][0]["prompt_token_ids"]
    assert tokenizer.decode(sent).startswith("<|im_start|>system\nYou are a voter.")  # the model's chat template
    assert answers[0].distribution == pytest.approx({"A": 0.75, "B": 0.25})
    assert answers[0].invalid == pytest.approx(0.2)  # C is not an option here: its mass and the rest are outside
    assert answers[0].tokens == len(sent) and answers[0].raw == "A"


def test_a_prompt_too_long_fails_alone_and_is_not_sent(tokenizer):
    sim = simulator(tokenizer, lambda p, params: request([completion("A", {})]), max_len=40)
    prompts = [
        Prompt(persona_id=0, question_id="short", system="s", user="A?", labels=["A", "B"]),
        Prompt(persona_id=0, question_id="long", system="s", user="word " * 100, labels=["A", "B"]),
    ]
    short, long = sim.answer(prompts)
    assert len(sim.llm.calls[0][0]) == 1 and long.invalid == 1.0 and "max_model_len=40" in long.error
    assert short.error is None


def test_a_generate_prompt_too_long_gets_an_empty_reply_alone(tokenizer):
    sim = simulator(tokenizer, lambda p, params: request([completion('{"job": "nurse"}', {})]), max_len=40)
    assert sim.generate(["Who?", "word " * 100, "Who else?"]) == ['{"job": "nurse"}', "", '{"job": "nurse"}']
    assert len(sim.llm.calls[0][0]) == 2 and sim.stats() == {"generate_prompts_too_long": 1}


def test_top_k_and_samples_modes(tokenizer):
    top = simulator(
        tokenizer,
        lambda p, params: request(
            [completion(" B", {5: Logprob(math.log(0.6), 1, " B"), 6: Logprob(math.log(0.3), 2, "A")})]
        ),
        scoring="top_k",
        top_logprobs=5,
    )
    [answer] = top.answer([Prompt(persona_id=0, question_id="q", system="s", user="u", labels=["A", "B"])])
    assert top.llm.calls[0][1][0].logprobs == 5 and answer.distribution == pytest.approx({"A": 1 / 3, "B": 2 / 3})

    texts = ["A", "B", "A", "I think A", "no idea"]
    sampled = simulator(
        tokenizer,
        lambda p, params: request([completion(t, {}, index=i) for i, t in enumerate(texts)]),
        mode="samples",
        samples=5,
    )
    prompts = [Prompt(persona_id=0, question_id="q", system="s", user="u", labels=["A", "B"], repeat=r) for r in (0, 1)]
    first, _ = sampled.answer(prompts)
    seeds = [params.seed for params in sampled.llm.calls[0][1]]
    assert seeds == [0, 5] and sampled.llm.calls[0][1][0].n == 5  # repeats sample differently, reruns alike
    assert first.distribution == pytest.approx({"A": 0.75, "B": 0.25}) and first.invalid == pytest.approx(0.2)


def test_generate_asks_for_structured_json(tokenizer):
    schema = {"type": "object", "properties": {"job": {"type": "string"}}, "required": ["job"]}
    sim = simulator(tokenizer, lambda p, params: request([completion('{"job": "nurse"}', {})]))
    assert sim.generate(["Who?", "Who else?"], max_tokens=32, json_schema=schema) == ['{"job": "nurse"}'] * 2
    [(prompts, params)] = sim.llm.calls
    assert (
        len(prompts) == 2
        and isinstance(params.structured_outputs, StructuredOutputsParams)
        and params.structured_outputs.json == schema
    )
    assert params.max_tokens == 32


def test_identity_changes_with_what_changes_answers(smollm2_hf):
    base = VLLMSimulator(VLLMSimulator.Config(model=str(smollm2_hf))).identity()
    assert base["model"] == "smollm2-hf" and base["weights"]
    assert VLLMSimulator(VLLMSimulator.Config(model=str(smollm2_hf), scoring="top_k")).identity() != base
    assert VLLMSimulator(VLLMSimulator.Config(model=str(smollm2_hf), dtype="float32")).identity() != base
