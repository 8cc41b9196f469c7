#!/usr/bin/env python3
"""Render the published chat templates in tests/fixtures/chat_templates/*.jinja with transformers' own
apply_chat_template (tokenize=False) and record the results, so the C++ renderer can be checked byte for
byte. Writes tests/fixtures/chat_templates/expected.json.

Needs: pip install transformers jinja2 (no torch). Deterministic: strftime_now's clock is fixed.
"""
import argparse
import datetime as real_datetime
import json
from pathlib import Path

import transformers.utils.chat_template_utils as chat_template_utils
from transformers import PreTrainedTokenizerFast

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "tests/fixtures/chat_templates"
TOKENIZERS = ROOT / "tests/fixtures/tokenizers"
# strftime_now's "now": noon UTC, so the date is the same in every time zone from UTC-11 to UTC+11.
FIXED_NOW = real_datetime.datetime(2025, 3, 9, 12, 0, 0, tzinfo=real_datetime.timezone.utc)


class FixedDatetime(real_datetime.datetime):
    @classmethod
    def now(cls, tz=None):
        return FIXED_NOW.astimezone(tz).replace(tzinfo=None) if tz is None else FIXED_NOW.astimezone(tz)


# template file -> (tokenizer fixture, bos_token, eos_token, supports tools)
MODELS = {
    "llama-3.2-3b-instruct.jinja": ("llama3_bpe", "<|begin_of_text|>", "<|eot_id|>", "llama"),
    "llama-3.3-70b-instruct.jinja": ("llama3_bpe", "<|begin_of_text|>", "<|eot_id|>", "llama"),
    "mistral-7b-instruct-v0.2.jinja": ("llama2_bpe", "<s>", "</s>", None),
    "mistral-7b-instruct-v0.3.jinja": ("llama2_bpe", "<s>", "</s>", "mistral"),
    "qwen2-instruct.jinja": ("qwen2_bpe", None, "<|im_end|>", None),
    "qwen2.5-instruct.jinja": ("qwen2_bpe", None, "<|im_end|>", "qwen"),
    "qwen3-0.6b.jinja": ("qwen2_bpe", None, "<|im_end|>", "qwen"),
    "smollm2-instruct.jinja": ("qwen2_bpe", None, "<|im_end|>", None),
}

CHATS = [
    [{"role": "user", "content": "Hello!"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "What is 2+2?"}],
    [{"role": "system", "content": "  Be brief.  \n"}, {"role": "user", "content": "What is 2+2?"},
     {"role": "assistant", "content": "4"}, {"role": "user", "content": "  And 3+3?  "}],
    [{"role": "user", "content": "Explain\nthis:\tcode"}, {"role": "assistant", "content": "Sure. ☃"},
     {"role": "user", "content": "Thanks — 日本語 😀 \"quoted\" 'single' \\ back"}],
    [{"role": "user", "content": "Write {{ not_a_var }} and {% raw %} literally"},
     {"role": "assistant", "content": "Done: {{ not_a_var }}"}],
    # roles that some templates reject
    [{"role": "assistant", "content": "I speak first"}, {"role": "user", "content": "ok"}],
    [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
]

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name, e.g. Zürich"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}
TIME_TOOL = {"type": "function", "function": {"name": "get_time", "description": "Current time",
                                               "parameters": {"type": "object", "properties": {}}}}

TOOL_CHATS = {
    "llama": [
        [{"role": "system", "content": "Use tools."}, {"role": "user", "content": "Weather in Zürich?"}],
        [{"role": "user", "content": "Weather in Paris?"},
         {"role": "assistant", "tool_calls": [{"type": "function", "function": {
             "name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}]},
         {"role": "tool", "content": "18 degrees"},
         {"role": "tool", "content": {"temperature": 18, "sky": "clear"}}],
    ],
    "qwen": [
        [{"role": "system", "content": "Use tools."}, {"role": "user", "content": "Weather in Zürich?"}],
        [{"role": "user", "content": "Weather in Paris and the time?"},
         {"role": "assistant", "content": "Let me check.", "tool_calls": [
             {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
             {"type": "function", "function": {"name": "get_time", "arguments": "{}"}}]},
         {"role": "tool", "content": "18 degrees"}, {"role": "tool", "content": "12:00"},
         {"role": "assistant", "content": "It is 18 degrees at 12:00."}, {"role": "user", "content": "Thanks"}],
    ],
    "mistral": [
        [{"role": "system", "content": "Use tools."}, {"role": "user", "content": "Weather in Zürich?"}],
        [{"role": "user", "content": "Weather in Paris?"},
         {"role": "assistant", "tool_calls": [{"id": "call00001", "type": "function", "function": {
             "name": "get_weather", "arguments": {"city": "Paris"}}}]},
         {"role": "tool", "tool_call_id": "call00001", "content": "18 degrees"},
         {"role": "assistant", "content": "  It is 18 degrees.  "}, {"role": "user", "content": "Thanks"}],
    ],
}

# Qwen3's reasoning: <think> in past and final assistant turns, reasoning_content, enable_thinking.
QWEN3_CHATS = [
    ([{"role": "user", "content": "2+2?"},
      {"role": "assistant", "content": "<think>\nadd them\n</think>\n\n4"},
      {"role": "user", "content": "3+3?"},
      {"role": "assistant", "content": "<think>\nagain\n</think>\n\n6"}], {}),
    ([{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4", "reasoning_content": "simple sum"},
      {"role": "user", "content": "and 5+5?"}], {}),
    ([{"role": "user", "content": "Hi"}], {"enable_thinking": False}),
    ([{"role": "system", "content": "S"}, {"role": "user", "content": "<tool_response>x</tool_response>"},
      {"role": "assistant", "content": "<think>r</think>ok"}], {}),
]

EXTRA_CASES = {
    "llama-3.2-3b-instruct.jinja": [
        (CHATS[1], None, {"date_string": "01 Jan 2030"}),
        (TOOL_CHATS["llama"][0], [WEATHER_TOOL], {"tools_in_user_message": False}),
    ],
    "llama-3.3-70b-instruct.jinja": [
        ([{"role": "user", "content": "Search the weather"},
          {"role": "assistant", "tool_calls": [{"type": "function", "function": {
              "name": "brave_search", "arguments": {"query": "weather"}}}]},
          {"role": "ipython", "content": "sunny"}], None,
         {"builtin_tools": ["brave_search", "wolfram_alpha", "code_interpreter"]}),
        (TOOL_CHATS["llama"][0], [WEATHER_TOOL], {"tools_in_user_message": False, "date_string": "5 May 2025"}),
    ],
}


def render(template: str, spec, messages, tools, add_generation_prompt, extra):
    fixture, bos, eos, _ = spec
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(TOKENIZERS / fixture / "tokenizer.json"),
                                        bos_token=bos, eos_token=eos, chat_template=template)
    try:
        return {"text": tokenizer.apply_chat_template(messages, tools=tools, add_generation_prompt=add_generation_prompt,
                                                      tokenize=False, **extra)}
    except Exception as error:  # the template's raise_exception or a Jinja error: the C++ side must throw too
        return {"error": str(error)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=TEMPLATES / "expected.json")
    args = parser.parse_args()
    chat_template_utils.datetime = FixedDatetime
    cases = []
    for name, spec in MODELS.items():
        template = (TEMPLATES / name).read_text(encoding="utf-8")
        runs = [(chat, None, {}) for chat in CHATS]
        if spec[3]:
            runs += [(chat, [WEATHER_TOOL, TIME_TOOL], {}) for chat in TOOL_CHATS[spec[3]]]
        if name.startswith("qwen3"):
            runs += [(chat, None, extra) for chat, extra in QWEN3_CHATS]
        runs += EXTRA_CASES.get(name, [])
        for messages, tools, extra in runs:
            for add_generation_prompt in (True, False):
                case = {"template": name, "bos_token": spec[1], "eos_token": spec[2], "messages": messages,
                        "tools": tools, "extra": extra, "add_generation_prompt": add_generation_prompt,
                        "now": int(FIXED_NOW.timestamp())}
                case.update(render(template, spec, messages, tools, add_generation_prompt, extra))
                cases.append(case)
    args.out.write_text(json.dumps({"cases": cases}, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    errors = sum("error" in c for c in cases)
    print(f"wrote {len(cases)} cases ({errors} expected errors) to {args.out}")


if __name__ == "__main__":
    main()
