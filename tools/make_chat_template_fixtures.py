#!/usr/bin/env python3
"""Render the published chat templates in tests/fixtures/chat_templates/*.jinja with transformers' own
apply_chat_template (tokenize=False) and record the results, so the C++ renderer can be checked byte for
byte. Also renders small snippets of Jinja features with transformers' Jinja environment. Writes
tests/fixtures/chat_templates/expected.json and features.json.

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


# Jinja snippets (template, variables) covering what the interpreter implements; rendered as
# apply_chat_template would (messages = one user turn, tools/documents none, add_generation_prompt false).
FEATURES = [
    # whitespace control, trim_blocks, lstrip_blocks, comments, raw, trailing newline
    ("  {% if true %}\n  x\n  {% endif %}\n  {{ 'v' }}  \n{# c #}\nend\n", {}),
    ("a  {%- if true -%}  b  {%- endif -%}  c", {}),
    ("a\n  {%+ if true %}b{% endif %}\n{{- ' c ' -}}\n d", {}),
    ("{% raw %}{{ not evaluated }}{% endraw %}\nafter", {}),
    ("x {#- comment -#} y\r\nz\r\n\n", {}),
    ("{% for i in [1, 2] %}\n  {{ i }}\n{% endfor %}\n", {}),
    # literals and printing
    ("{{ [1, 'a', none, true, 1.5, {'k': [2]}] }}|{{ {'a': 1} }}|{{ (1, 2) }}|{{ ('a',) }}", {}),
    ("{{ 1e16 }} {{ 1.0 }} {{ 0.1 + 0.2 }} {{ 3.0e-5 }} {{ 123456789.123456789 }} {{ 1e-4 }} {{ -0.0 }}", {}),
    ("{{ 'it\\'s' }} {{ ['it\\'s', \"a\\\"b\"] }} {{ '\\u00e9\\x41\\n\\d' }} {{ 'a' 'b' }}", {}),
    ("{{ none }}|{{ true }}|{{ x }}|{{ undefined_name }}|", {"x": None}),
    # arithmetic and operators
    ("{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 1 + 2 * 3 - 4 }} {{ -2 ** 2 }}", {}),
    ("{{ 'ab' * 3 }} {{ [1] + [2] }} {{ 'a' ~ 1 ~ none ~ true }} {{ true + 1 }} {{ 7.5 // 2 }} {{ 2 * 1.5 }}", {}),
    ("{{ 1 == 1.0 }} {{ 'a' < 'b' }} {{ [1, 2] == [1, 2] }} {{ {'a': 1} == {'a': 1} }} {{ 1 != 2 }} {{ 3 >= 3 }}", {}),
    ("{{ 'a' in 'cat' }} {{ 'k' in {'k': 1} }} {{ 2 not in [1] }} {{ 1 in [1.0] }} {{ 'z' in x }}", {"x": ["a"]}),
    ("{{ 1 < 2 < 3 }} {{ 3 > 2 > 1 }} {{ 1 < 3 > 2 }} {{ 'a' in 'ab' in 'abc' }} {{ 1 == 1 != 2 }}", {}),
    ("{% for k, v in d|dictsort %}{{ k }}{{ v }}{% endfor %} {{ d|dictsort(by='value', reverse=true) }}", {"d": {"b": 1, "A": 2}}),
    ("{{ '0x1A'|int }} {{ 'inf'|int }} {{ '1e3'|int }} {{ ' 7 '|int }} {{ '-2.5'|float }}", {}),
    ("{{ not false }} {{ true and 'x' }} {{ '' or 'y' }} {{ 0 or none }} {{ not x is defined }}", {}),
    ("{{ 'a' if false }}|{{ 'a' if true else 'b' }}|{{ 1 if 0 else 2 if 0 else 3 }}", {}),
    # attribute, subscript, slices
    ("{{ m.role }} {{ m['role'] }} {{ m.missing is defined }} {{ l[0] }} {{ l[-1] }} {{ l[5] is defined }} {{ l.0 }}",
     {"m": {"role": "user"}, "l": [1, 2, 3]}),
    ("{{ 'abc'[::-1] }} {{ 'héllo'[1:3] }} {{ l[1:] }} {{ l[:-1] }} {{ l[::2] }} {{ l[-2:] }} {{ l[10:] }} {{ 'abc'[-1] }}",
     {"l": [1, 2, 3, 4]}),
    ("{{ none.a }}|{{ 'abc'.a }}|{{ ('abc'.a) is defined }}|{{ m.items is defined }}", {"m": {"a": 1}}),
    # statements and scoping
    ("{% set x = 0 %}{% for i in [1, 2] %}{{ x }}{% set x = i %}{{ x }}{% endfor %}{{ x }}", {}),
    ("{% if true %}{% set y = 3 %}{% endif %}{{ y }}", {}),
    ("{% set ns = namespace(n=0, s='') %}{% for i in range(4) %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}", {}),
    ("{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set t = 'x', 'y' %}{{ t }}", {}),
    ("{% set block %}inner {{ 1 + 1 }}{% endset %}[{{ block }}]", {}),
    ("{% for m in ms %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}"
     "{{ loop.last }}{{ loop.length }}{{ loop.previtem }}{{ loop.nextitem }}{{ loop.cycle('a', 'b') }};{% endfor %}",
     {"ms": ["a", "b", "c"]}),
    ("{% for x in [] %}no{% else %}empty{% endfor %}{% for x in [1, 2, 3, 4] if x is even %}{{ x }}{{ loop.length }}{% endfor %}",
     {}),
    ("{% for k, v in {'b': 1, 'a': 2}.items() %}{{ k }}={{ v }};{% endfor %}{% for k in {'x': 1} %}{{ k }}{% endfor %}", {}),
    ("{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %}", {}),
    ("{% for c in 'hé' %}[{{ c }}]{% endfor %}{% for x in undefined_name %}never{% endfor %}", {}),
    ("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('a') }} {{ greet('b', punct='?') }}", {}),
    ("{% if a %}A{% elif b %}B{% else %}C{% endif %}{% if not a and not b %}-{% endif %}", {"a": False, "b": True}),
    ("{% generation %}gen {{ 1 }}{% endgeneration %}", {}),
    # filters
    ("{{ ' \t x \u3000'|trim }}|{{ 'xxaxx'|trim('x') }}|{{ 'aXbX'|replace('X', 'y') }}|{{ 'Hello'|upper }}|{{ 'Hé'|lower }}", {}),
    ("{{ 'abc'|length }} {{ [1, 2]|length }} {{ {'a': 1}|count }} {{ x|length }} {{ 'héllo'|length }}", {}),
    ("{{ x|tojson }} {{ x|tojson(indent=2) }} {{ x|tojson(separators=(',', ':')) }} {{ x|tojson(sort_keys=true) }}",
     {"x": {"b": [1, 2.0, "é\n\"\u0001"], "a": None, "c": True, "d": {}, "e": []}}),
    ("{{ x|tojson(ensure_ascii=true) }} {{ 'x'|tojson }} {{ 5|tojson }} {{ 1.5|tojson }}", {"x": "é😀"}),
    ("{{ x|items|list }} {{ x|string }} {{ 5|string }} {{ x.keys()|list }} {{ x.values()|list }} {{ x.get('a') }} {{ x.get('z', 9) }}",
     {"x": {"b": 1, "a": 2}}),
    ("{{ x|default('d') }} {{ ''|default('d') }} {{ ''|default('d', true) }} {{ none|d('n') }}", {}),
    ("{{ [3, 1, 2]|first }} {{ [3, 1, 2]|last }} {{ 'abc'|first }} {{ [1, 2]|join }} {{ ['a', 'b']|join(', ') }} {{ [1, 2]|join('-') }}", {}),
    ("{{ l|selectattr('a', 'equalto', 2)|list }} {{ l|selectattr('a')|list }} {{ l|rejectattr('a')|list }} {{ l|map(attribute='a')|list }}",
     {"l": [{"a": 1}, {"a": 2}, {"b": 3}]}),
    ("{{ [1, 2, 3, 4]|select('odd')|list }} {{ [1, 2, 3]|reject('equalto', 2)|list }} {{ ['a', 'b']|map('upper')|list }}", {}),
    ("{{ [3, 1, 2]|sort }} {{ ['b', 'A', 'c']|sort }} {{ [3, 1, 2]|sort(reverse=true) }} {{ [1, 2, 1]|unique|list }} {{ [1, 2]|sum }}",
     {}),
    ("{{ -1|abs }} {{ 3.7|int }} {{ '12'|int }} {{ 2|float }} {{ 'x'|int }} {{ 2.567|round(2) }} {{ [1, 5, 3]|max }} {{ [4, 2]|min }}", {}),
    ("{{ 'hello world'|capitalize }} {{ 'hello world'|title }} {{ [1, 2]|reverse|list }} {{ 'abc'|reverse }}", {}),
    ("{{ 'a\nb\n\nc'|indent(2) }}|{{ 'a\nb'|indent(2, true) }}", {}),
    # tests
    ("{{ x is string }} {{ x is mapping }} {{ x is iterable }} {{ x is sequence }} {{ x is none }} {{ x is number }}", {"x": "s"}),
    ("{{ 1 is integer }} {{ 1.0 is float }} {{ true is boolean }} {{ true is number }} {{ false is false }} {{ 1 is true }}", {}),
    ("{{ 3 is odd }} {{ 4 is even }} {{ 6 is divisibleby 3 }} {{ 2 is lt 3 }} {{ 'a' is in 'abc' }} {{ x is iterable }} {{ d is mapping }}",
     {"d": {}}),
    ("{{ 'a' is equalto 'a' }} {{ 1 is eq 1 }} {{ 1 is ne 2 }} {{ 'ab' is lower }} {{ 'AB' is upper }} {{ x is not defined }}", {}),
    # str methods
    ("{{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a b c'.split(' ', 1) }} {{ 'a,b,c'.rsplit(',', 1) }}", {}),
    ("{{ 'x'.startswith(('a', 'x')) }} {{ 'abc'.endswith('bc') }} {{ '  x  '.strip() }}|{{ '\nx\n'.lstrip('\n') }}|{{ 'xyy'.rstrip('y') }}",
     {}),
    ("{{ 'abc'.upper() }} {{ 'ABC'.lower() }} {{ 'a-b'.replace('-', '+') }} {{ 'abcb'.find('b') }} {{ 'abcb'.count('b') }} {{ ', '.join(['a', 'b']) }}",
     {}),
    ("{{ 'hello world'.title() }} {{ 'hELLO'.capitalize() }} {{ '12'.isdigit() }} {{ 'a\nb\r\nc'.splitlines() }}", {}),
    ("{% set parts = c.split('</think>') %}{{ parts[-1].lstrip('\n') }}|{{ parts[0].rstrip('\n').split('<think>')[-1].lstrip('\n') }}",
     {"c": "<think>\nwhy\n</think>\n\nanswer"}),
    # globals
    ("{{ range(3)|list }} {{ range(1, 7, 2)|list }} {{ range(3, 0, -1)|list }} {{ dict(a=1) }} {{ namespace(a=1).a }}", {}),
    ("{{ strftime_now('%Y-%m-%d %H:%M') is string }} {{ strftime_now('%Y')|length }}", {}),
    ("{{ bos_token }}|{{ eos_token }}|{{ tools }}|{{ documents }}|{{ add_generation_prompt }}|{{ messages[0].content }}", {}),
    # errors (the C++ renderer must throw too)
    ("{{ raise_exception('stop here') }}", {}),
    ("{{ x.y.z }}", {}),
    ("{{ 'a' + 1 }}", {}),
    ("{{ 1 // 0 }}", {}),
    ("{% for x in 5 %}{% endfor %}", {}),
    ("{% set x.y = 1 %}", {"x": {}}),
    ("{{ 1 < 'a' }}", {}),
    ("{{ [1, 2].append(3) }}", {}),
    ("{{ {'a': 1}|items|first|unknownfilter }}", {}),
    ("{% if %}", {}),
    ("{{ 'unterminated }}", {}),
    ("{% for x in y %}", {}),
    ("{% endfor %}", {}),
    ("{{ x is unknowntest }}", {}),
    ("{% macro f(a) %}{% endmacro %}{{ f(1, 2) }}", {}),
]


def render_feature(template: str, variables: dict) -> dict:
    try:
        compiled = chat_template_utils._compile_jinja_template(template)
        return {"text": compiled.render(messages=[{"role": "user", "content": "hi"}], tools=None, documents=None,
                                        add_generation_prompt=False, **variables)}
    except Exception as error:
        return {"error": f"{type(error).__name__}: {error}"}


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
    parser.add_argument("--features-out", type=Path, default=TEMPLATES / "features.json")
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
    features = [{"template": t, "vars": v, **render_feature(t, v)} for t, v in FEATURES]
    args.features_out.write_text(json.dumps({"cases": features}, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    errors = sum("error" in c for c in features)
    print(f"wrote {len(features)} feature cases ({errors} expected errors) to {args.features_out}")


if __name__ == "__main__":
    main()
